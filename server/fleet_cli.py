"""``streetwatch fleet keygen|sign-config|deploy|status|halt|resume|group``: releases and rollouts.

    streetwatch fleet keygen --out /secure/fleet-key           # once; the .pub goes on every box
    streetwatch model sign streetwatch-det 1.3.0 --key /secure/fleet-key/fleet-release.key
    streetwatch fleet deploy streetwatch-det 1.3.0 --group patrol-north --wait
    streetwatch fleet status

``deploy`` stages the rollout in the database; a running ingest worker sends its waves (it
holds the server's broker login) and halts it on a failed reply, a silent box or a precision
drop. ``--wait`` follows it until it is done (exit 0) or halted (exit 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from server.user_cli import command_session

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


def register_fleet(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    usage: Callable[[argparse.ArgumentParser], int],
    config_help: str,
) -> None:
    fleet = subparsers.add_parser(
        "fleet", help="Release keys, signed configs, rollouts to boxes, fleet status."
    )
    fleet.set_defaults(handler=lambda _args: usage(fleet))
    commands = fleet.add_subparsers(dest="fleet_command", metavar="SUBCOMMAND")

    keygen = commands.add_parser(
        "keygen", help="Make the fleet's Ed25519 release key pair (refuses to overwrite)."
    )
    keygen.add_argument(
        "--out", type=Path, required=True, help="Folder for fleet-release.key (0600) and .pub."
    )
    keygen.set_defaults(handler=_keygen)

    sign = commands.add_parser(
        "sign-config", help="Copy a box configuration into the release folder and sign it."
    )
    sign.add_argument("file", type=Path, help="The box's YAML configuration.")
    sign.add_argument("--name", required=True, help="Configuration name (e.g. patrol-van).")
    sign.add_argument("--version", required=True, help="Its version; a version names one content for good.")
    sign.add_argument("--key", type=Path, required=True, help="The private release key.")
    sign.add_argument(
        "--store", type=Path, help="Release folder (default: fleet.config_store of the settings)."
    )
    sign.add_argument("--config", help=config_help)
    sign.set_defaults(handler=_sign_config)

    deploy = commands.add_parser("deploy", help="Stage a rollout of a signed model (or --kind config).")
    deploy.add_argument("name")
    deploy.add_argument("version")
    which = deploy.add_mutually_exclusive_group(required=True)
    which.add_argument("--devices", help="Comma-separated device ids, e.g. van-01,van-02.")
    which.add_argument("--group", help="Every box of this fleet group.")
    which.add_argument("--percent", type=float, help="This share of all boxes (a stable choice).")
    deploy.add_argument("--kind", choices=["model", "config"], default="model")
    deploy.add_argument("--canary", type=int, default=1, help="Boxes in the first wave (default 1).")
    deploy.add_argument(
        "--growth", type=int, default=4, help="Each wave this many times the last (default 4)."
    )
    deploy.add_argument("--wait", action="store_true", help="Follow it: exit 0 when done, 1 when halted.")
    deploy.add_argument("--timeout", type=float, default=3600, help="With --wait: give up after this many s.")
    deploy.add_argument("--config", help=config_help)
    deploy.set_defaults(handler=_deploy)

    status = commands.add_parser(
        "status", help="Per box: versions, last seen, health, rollout; then rollouts."
    )
    status.add_argument("--group", help="Only boxes of this group.")
    status.add_argument("--json", action="store_true")
    status.add_argument("--config", help=config_help)
    status.set_defaults(handler=_status)

    for verb, helptext in (
        ("halt", "Stop sending a running rollout."),
        ("resume", "Run a halted rollout again."),
    ):
        command = commands.add_parser(verb, help=helptext)
        command.add_argument("rollout_id", type=int)
        command.add_argument("--config", help=config_help)
        command.set_defaults(handler=_halt if verb == "halt" else _resume)

    group = commands.add_parser("group", help="Put boxes in a fleet group (--none takes them out).")
    group.add_argument("group", nargs="?", help="Group name, e.g. patrol-north.")
    group.add_argument("devices", nargs="+", help="Device ids.")
    group.add_argument("--none", action="store_true", help="Remove the boxes from any group.")
    group.add_argument("--config", help=config_help)
    group.set_defaults(handler=_group)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _keygen(args: argparse.Namespace) -> int:
    from streetwatch.releases import generate_keypair

    private, public = generate_keypair(args.out)
    print(f"private key: {private} (keep it off the boxes; whoever holds it can ship code to them)")
    print(f"public key:  {public} (install on every box)")
    return 0


def _sign_config(args: argparse.Namespace) -> int:
    from server.cli import settings_from_args
    from streetwatch.releases import sign_config

    store = args.store or Path(settings_from_args(args).fleet.config_store)
    signed = sign_config(args.file, args.name, args.version, args.key, store)
    release = signed.release
    print(f"signed config {release.name} {release.version}: {release.size} bytes, sha256 {release.sha256}")
    print(f"stored as {signed.path}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from server.cli import settings_from_args
    from server.fleet.overview import rollout_view
    from server.fleet.rollouts import Selection, stage

    settings = settings_from_args(args)
    devices = tuple(d.strip() for d in (args.devices or "").split(",") if d.strip())
    selection = Selection(devices=devices, group=args.group, percent=args.percent)
    with command_session(args) as session:
        rollout = stage(
            session,
            settings,
            args.kind,
            args.name,
            args.version,
            selection,
            _now(),
            canary=args.canary,
            growth=args.growth,
            created_by="cli",
        )
        session.flush()
        view = rollout_view(rollout)
    print(
        f"rollout {view.id}: {view.kind} {view.name} {view.version} to {view.selector}, "
        f"{sum(view.waves)} boxes in waves of {'+'.join(map(str, view.waves))}; "
        "a running ingest worker sends the first wave"
    )
    if not args.wait:
        return 0
    return _follow(args, view.id)


def _follow(args: argparse.Namespace, rollout_id: int) -> int:
    from server.db.models import Rollout

    deadline = time.monotonic() + args.timeout
    seen: dict[str, str] = {}
    while True:
        with command_session(args) as session:
            rollout = session.get(Rollout, rollout_id)
            assert rollout is not None
            for target in rollout.targets:
                shown = f"{target.state} {target.step or ''}".strip()
                if seen.get(target.device_id) != shown:
                    seen[target.device_id] = shown
                    why = f": {target.reason}" if target.reason else ""
                    print(f"  {target.device_id} (wave {target.wave + 1}): {shown}{why}", flush=True)
            state, halted_reason = rollout.state, rollout.halted_reason
        if state == "done":
            print(f"rollout {rollout_id} done")
            return 0
        if state == "halted":
            print(f"rollout {rollout_id} halted: {halted_reason}")
            return 1
        if time.monotonic() > deadline:
            print(f"rollout {rollout_id} still {state} after {args.timeout:g} s", file=sys.stderr)
            return 2
        time.sleep(1.0)


def _status(args: argparse.Namespace) -> int:
    from server.fleet.overview import fleet_view

    with command_session(args) as session:
        view = fleet_view(session, _now(), group=args.group)
    if args.json:
        print(view.model_dump_json(indent=2))
        return 0
    rows = [["device", "group", "health", "status", "last seen (UTC)", "models", "config", "rollout"]]
    for box in view.boxes:
        part = box.rollout
        rollout = f"#{part.rollout_id} {part.version} {part.state} {part.step or ''}".strip() if part else ""
        rows.append(
            [
                box.device_id,
                box.group or "",
                box.health,
                box.status,
                box.last_seen_at.strftime("%Y-%m-%d %H:%M:%S"),
                ", ".join(f"{k} {v}" for k, v in sorted(box.models.items())),  # detectors, load model
                box.config or "",
                rollout,
            ]
        )
    _table(rows)
    if view.rollouts:
        print()
        for r in view.rollouts:
            counts = ", ".join(f"{n} {s}" for s, n in r.targets.items())
            wave = f"wave {min(r.current_wave + 1, len(r.waves))}/{len(r.waves)}"
            why = f" - {r.halted_reason}" if r.halted_reason else ""
            print(
                f"rollout {r.id}: {r.kind} {r.name} {r.version} to {r.selector}: "
                f"{r.state}, {wave} ({counts}){why}"
            )
    return 0


def _table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _halt(args: argparse.Namespace) -> int:
    from server.fleet.rollouts import halt

    with command_session(args) as session:
        rollout = _rollout(session, args.rollout_id)
        if rollout.state != "running":
            from streetwatch.errors import ConfigError

            raise ConfigError(f"rollout {rollout.id} is {rollout.state}, not running")
        halt(rollout, "halted from the command line", _now())
    print(f"rollout {args.rollout_id} halted; boxes that have not got it yet will not")
    return 0


def _resume(args: argparse.Namespace) -> int:
    from server.fleet.rollouts import resume

    with command_session(args) as session:
        resume(_rollout(session, args.rollout_id), _now())
    print(f"rollout {args.rollout_id} running again")
    return 0


def _rollout(session: Session, rollout_id: int) -> Any:
    from server.db.models import Rollout
    from streetwatch.errors import ConfigError

    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        raise ConfigError(f"no rollout {rollout_id}")
    return rollout


def _group(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.db.models import Device
    from streetwatch.errors import ConfigError

    group = None if args.none else args.group
    devices = list(args.devices)
    if args.none and args.group is not None:
        devices.insert(0, args.group)  # with --none every argument is a device
    if not args.none and group is None:
        raise ConfigError("name a group, or pass --none")
    with command_session(args) as session:
        found = {d.device_id: d for d in session.scalars(select(Device).where(Device.device_id.in_(devices)))}
        unknown = [d for d in devices if d not in found]
        if unknown:
            raise ConfigError(f"the server has never heard from {', '.join(unknown)}")
        for device in found.values():
            device.fleet_group = group
    print(f"{len(devices)} box(es) now in {'no group' if group is None else 'group ' + group}")
    return 0

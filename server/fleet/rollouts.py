"""Staged rollouts: which boxes get a signed release, in which waves, and when to stop.

    rollout = stage(session, settings, "model", "streetwatch-det", "1.3.0", Selection(group="north"), now)
    for device_id, payload in advance(session, settings, now): publish(commands_topic(device_id), payload)

A rollout starts with a canary wave (one box by default) and grows each next wave by
``growth`` (1, 4, 16, ... boxes). The next wave is sent only when every box of the current
one has answered ``done``. It halts, sending nothing more, as soon as a box answers
``failed``, a box stays silent longer than ``fleet.reply_timeout_s`` after its command or its
last reply, or the new version's live precision from reviews falls below the old one's by more
than ``fleet.precision_margin`` (a model's cases by the model that raised them, a configuration's
by the configuration the box ran, which events carry since event schema 6). A box that fails
rolls itself back (the box's job); a halted rollout leaves the boxes that finished on the new
version (deploy the old one to undo them).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db.models import Device, Rollout, RolloutTarget
from server.fleet.precision import config_precision_by_version, precision_by_version, precision_drop
from server.settings import ServerSettings
from streetwatch.errors import ConfigError
from streetwatch.messages import UpdateConfigCommand, UpdateModelCommand
from streetwatch.release_signing import ReleaseKind
from streetwatch.releases import SignedRelease, check_release, find_release, load_public_key

#: Target states of a box that has not finished yet.
OPEN = frozenset({"pending", "sent", "accepted", "progress"})
#: Target states that halt the rollout.
FAILING = frozenset({"failed", "timeout"})


@dataclass(frozen=True)
class Selection:
    """Which boxes: named ones, a group, or a share of the fleet (exactly one)."""

    devices: tuple[str, ...] = ()
    group: str | None = None
    percent: float | None = None

    def describe(self) -> str:
        if self.devices:
            return "devices " + ",".join(self.devices)
        if self.group is not None:
            return f"group {self.group}"
        return f"{self.percent:g}% of the fleet"


def signed_release(settings: ServerSettings, kind: ReleaseKind, name: str, version: str) -> SignedRelease:
    """The signed artifact to ship, checked against its file (and the public key, when configured)."""
    fleet = settings.fleet
    folder = Path(fleet.model_registry).parent if kind == "model" else Path(fleet.config_store)
    signed = find_release(folder, kind, name, version)
    key = load_public_key(Path(fleet.public_key)) if fleet.public_key else None
    check_release(signed, key)
    return signed


def choose_devices(session: Session, selection: Selection) -> list[Device]:
    chosen = [bool(selection.devices), selection.group is not None, selection.percent is not None]
    if sum(chosen) != 1:
        raise ConfigError("name exactly one of: --devices, --group, --percent")
    if selection.devices:
        found = {
            d.device_id: d
            for d in session.scalars(select(Device).where(Device.device_id.in_(selection.devices)))
        }
        unknown = [d for d in selection.devices if d not in found]
        if unknown:
            raise ConfigError(f"the server has never heard from {', '.join(unknown)}; check the ids")
        return [found[d] for d in dict.fromkeys(selection.devices)]
    if selection.group is not None:
        devices = list(
            session.scalars(
                select(Device).where(Device.fleet_group == selection.group).order_by(Device.device_id)
            )
        )
        if not devices:
            raise ConfigError(
                f"no device is in group {selection.group!r} (set one with: streetwatch fleet group)"
            )
        return devices
    percent = selection.percent or 0.0
    if not 0 < percent <= 100:
        raise ConfigError(f"--percent must be above 0 and at most 100, not {percent:g}")
    devices = list(session.scalars(select(Device)))
    if not devices:
        raise ConfigError("the server knows no devices yet")
    # A stable spread: the same boxes are "the first 10%" every time, whatever their names' order.
    devices.sort(key=lambda d: hashlib.sha256(d.device_id.encode()).hexdigest())
    return devices[: max(1, math.ceil(len(devices) * percent / 100))]


def wave_sizes(count: int, canary: int, growth: int) -> list[int]:
    """Boxes per wave: ``canary``, then each wave ``growth`` times the one before, until all are in."""
    if canary < 1 or growth < 1:
        raise ConfigError("the canary wave needs at least one box and waves cannot shrink (growth >= 1)")
    sizes: list[int] = []
    size, left = canary, count
    while left > 0:
        sizes.append(min(size, left))
        left -= sizes[-1]
        size *= growth
    return sizes


def running_version(device: Device, kind: str, name: str) -> str | None:
    if kind == "config":
        return device.config_version if device.config_name == name else None
    for model in device.models or []:
        if isinstance(model, dict) and model.get("name") == name:
            return str(model.get("version"))
    return None


def runs_model(device: Device, name: str) -> bool:
    """Whether ``device`` runs a model named ``name``; True while it has reported none yet (it may)."""
    return not device.models or running_version(device, "model", name) is not None


def _describe(selection: Selection, name: str, lacking: list[str]) -> str:
    """The selection, and the boxes of a group or share left out because they run no such model."""
    if not lacking:
        return selection.describe()
    return f"{selection.describe()} (left out, running no {name}: {', '.join(lacking)})"


def stage(
    session: Session,
    settings: ServerSettings,
    kind: ReleaseKind,
    name: str,
    version: str,
    selection: Selection,
    now: datetime,
    *,
    canary: int = 1,
    growth: int = 4,
    created_by: str | None = None,
) -> Rollout:
    """Plan a rollout; its first wave goes out with the next :func:`advance`. The caller commits."""
    signed = signed_release(settings, kind, name, version)
    busy = session.scalar(
        select(Rollout.id).where(Rollout.kind == kind, Rollout.name == name, Rollout.state == "running")
    )
    if busy is not None:
        raise ConfigError(f"rollout {busy} of {kind} {name} is still running; halt it or let it finish first")
    chosen = choose_devices(session, selection)
    lacking = [d.device_id for d in chosen if kind == "model" and not runs_model(d, name)]
    if lacking and selection.devices:
        raise ConfigError(
            f"{', '.join(lacking)} run no model named {name} (a box updates only a model it runs: its "
            "detectors, and its load classifier when it has one); leave them out"
        )
    devices = [d for d in chosen if d.device_id not in lacking and running_version(d, kind, name) != version]
    if not devices:
        if lacking and len(lacking) == len(chosen):
            raise ConfigError(f"no selected box runs a model named {name}")
        raise ConfigError(f"every selected box runs {kind} {name} {version} already")
    # A box takes one update at a time and refuses another meanwhile: that would halt a rollout.
    updating = session.execute(
        select(RolloutTarget.device_id, Rollout.id)
        .join(Rollout, Rollout.id == RolloutTarget.rollout_id)
        .where(
            Rollout.state == "running",
            RolloutTarget.state.in_(OPEN),
            RolloutTarget.device_id.in_([d.device_id for d in devices]),
        )
    ).all()
    if updating:
        busy_boxes = ", ".join(sorted({f"{device} (rollout {rid})" for device, rid in updating}))
        raise ConfigError(f"these boxes are still in a running rollout: {busy_boxes}; wait for it or halt it")
    sizes = wave_sizes(len(devices), canary, growth)
    rollout = Rollout(
        kind=kind,
        name=name,
        version=version,
        sha256=signed.release.sha256,
        size=signed.release.size,
        signature=signed.signature,
        source=str(signed.path.resolve()),
        selector=_describe(selection, name, lacking)[:255],
        state="running",
        waves=sizes,
        current_wave=0,
        reply_timeout_s=settings.fleet.reply_timeout_s,
        precision_margin=settings.fleet.precision_margin,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    wave, left = 0, sizes[0]
    for device in devices:
        if left == 0:
            wave += 1
            left = sizes[wave]
        left -= 1
        rollout.targets.append(
            RolloutTarget(
                device_id=device.device_id,
                wave=wave,
                command_id=new_command_id(kind),
                state="pending",
                previous_version=running_version(device, kind, name),
            )
        )
    session.add(rollout)
    session.flush()
    return rollout


def new_command_id(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(12)}"


def command_payload(rollout: Rollout, target: RolloutTarget, base_url: str) -> bytes:
    """The ``update_model`` / ``update_config`` command for one box."""
    cls = UpdateModelCommand if rollout.kind == "model" else UpdateConfigCommand
    command = cls(
        command_id=target.command_id,
        name=rollout.name,
        version=rollout.version,
        url=f"{base_url.rstrip('/')}/api/v1/fleet/downloads/{target.command_id}",
        sha256=rollout.sha256,
        size=rollout.size,
        signature=rollout.signature,
    )
    return command.model_dump_json().encode()


def advance(session: Session, settings: ServerSettings, now: datetime) -> list[tuple[str, bytes]]:
    """Move every running rollout on; return the commands to publish once the caller has committed."""
    outgoing: list[tuple[str, bytes]] = []
    rollouts = session.scalars(
        select(Rollout)
        .where(Rollout.state == "running")
        .order_by(Rollout.id)
        .with_for_update(skip_locked=True)
    ).all()
    for rollout in rollouts:
        outgoing += _advance_one(session, settings, rollout, now)
    return outgoing


def _advance_one(
    session: Session, settings: ServerSettings, rollout: Rollout, now: datetime
) -> list[tuple[str, bytes]]:
    waiting = [t for t in rollout.targets if t.state in OPEN - {"pending"}]
    devices = {
        d.device_id: d
        for d in session.scalars(select(Device).where(Device.device_id.in_([t.device_id for t in waiting])))
    }
    for target in waiting:
        device = devices.get(target.device_id)
        if device is not None and device.status == "offline":
            continue  # a van parked for the night: the broker keeps its command until it is back
        # Silence counts from the command, the box's last reply, or its coming back online.
        moments = [target.sent_at, target.replied_at]
        if device is not None and device.status == "online":
            moments.append(device.status_at)
        last = max((m for m in moments if m is not None), default=now)
        if (now - last).total_seconds() > rollout.reply_timeout_s:
            target.state = "timeout"
            target.reason = f"no reply for {rollout.reply_timeout_s:g} s (last step: {target.step or 'none'})"
            target.finished_at = now
    failing = [t for t in rollout.targets if t.state in FAILING]
    if failing:
        first = failing[0]
        halt(rollout, f"{first.device_id} {first.state}: {first.reason}", now)
        return []
    # A configuration is judged like a model: thresholds, views and fusion move precision as much.
    olds = {t.previous_version for t in rollout.targets if t.previous_version}
    old = sorted(olds)[0] if len(olds) == 1 else None
    dropped = precision_drop(
        session,
        rollout.name,
        rollout.version,
        old,
        rollout.created_at,
        rollout.precision_margin,
        settings.fleet.min_reviews,
        by_version=config_precision_by_version if rollout.kind == "config" else precision_by_version,
    )
    if dropped:
        halt(rollout, dropped, now)
        return []
    while True:
        wave = [t for t in rollout.targets if t.wave == rollout.current_wave]
        if not all(t.state == "done" for t in wave):
            break
        if rollout.current_wave + 1 >= len(rollout.waves):
            rollout.state = "done"
            rollout.updated_at = now
            return []
        rollout.current_wave += 1
        rollout.updated_at = now
    outgoing = []
    for target in rollout.targets:
        if target.wave == rollout.current_wave and target.state == "pending":
            target.state = "sent"
            target.sent_at = now
            outgoing.append(
                (target.device_id, command_payload(rollout, target, settings.fleet.download_base_url))
            )
    if outgoing:
        rollout.updated_at = now
    return outgoing


def halt(rollout: Rollout, reason: str, now: datetime) -> None:
    """Stop sending; boxes still pending are cancelled (they keep what they run)."""
    rollout.state = "halted"
    rollout.halted_reason = reason[:2000]
    rollout.updated_at = now
    for target in rollout.targets:
        if target.state == "pending":
            target.state = "cancelled"


def resume(rollout: Rollout, now: datetime) -> None:
    """Run a halted rollout again: cancelled and timed-out boxes get their command again; failed ones
    stay failed (deploy again once the cause is fixed)."""
    if rollout.state != "halted":
        raise ConfigError(f"rollout {rollout.id} is {rollout.state}; only a halted rollout can resume")
    if any(t.state == "failed" for t in rollout.targets):
        raise ConfigError(
            f"rollout {rollout.id} has boxes that failed; fix the cause and deploy a new version instead"
        )
    for target in rollout.targets:
        if target.state in ("cancelled", "timeout"):
            target.state, target.reason, target.finished_at, target.sent_at = "pending", None, None, None
            # A new id: a box drops a command id it handled recently (QoS 1 duplicates), and a
            # timed-out box may have handled the first one while its replies were lost.
            target.command_id = new_command_id(rollout.kind)
    rollout.state = "running"
    rollout.halted_reason = None
    rollout.updated_at = now

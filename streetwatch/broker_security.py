"""Who may do what on the broker: the Mosquitto dynamic-security file for StreetWatch.

    write_dynsec_file(Path("/var/lib/mosquitto/dynamic-security.json"),
                      devices={"van-07": "pw"}, ingest={"ingest-1": "pw1", "ingest-2": "pw2"},
                      admin=("broker-admin", "pw"))

Why the dynamic-security plugin and not ``acl_file``: Mosquitto 2.0 checks an ``acl_file``
only when a message is published or delivered, never when a client subscribes. A box could
therefore join the ingest's shared subscription (``$share/<group>/...``); the broker then
hands it its share of every box's messages, refuses the delivery by ACL and drops them. The
plugin checks every SUBSCRIBE against ``subscribeLiteral`` rules (the filter as sent,
``$share/<group>/`` prefix included), so a box may subscribe to exactly its own ``commands``
and ``acks`` and nothing else. It also binds each login to one client id, so no one can
connect with another box's (or a worker's) client id and take over its session and queued
messages.

Every client's client id is its username. The plugin in Mosquitto 2.0 has no ``%u``
substitution, so each box gets its own role naming its own topics; ingest workers share one
role. Passwords are stored as the plugin stores them (PBKDF2-HMAC-SHA512, random salt).
The file is read when the broker starts; while it runs, change it with ``mosquitto_ctrl``
(``deploy/mosquitto/add-device.sh``), which also saves it.

Run ``python -m streetwatch.broker_security --help`` to write the file from password lists.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from streetwatch.errors import ConfigError
from streetwatch.events import DEVICE_ID_PATTERN
from streetwatch.topics import (
    ROOT,
    TopicKind,
    acks_topic,
    command_replies_topic,
    commands_topic,
    subscription,
)

#: The default shared-subscription group of the ingest workers (``server.settings.MqttSettings``).
DEFAULT_SHARE_GROUP = "streetwatch-ingest"
#: The role every ingest worker holds.
INGEST_ROLE = "streetwatch-ingest"
#: The role of the administrator that ``mosquitto_ctrl`` logs in as.
ADMIN_ROLE = "dynsec-admin"
#: What the plugin itself uses; a higher count only slows every connect.
PBKDF2_ITERATIONS = 101

_NAME = re.compile(DEVICE_ID_PATTERN)
_INGEST_READS: tuple[TopicKind, ...] = ("events", "evidence", "status", "telemetry", "command_replies")
#: The kinds a box must never leave retained (only its status is retained).
_CLEARABLE: tuple[TopicKind, ...] = ("events", "evidence", "telemetry")


def device_role_name(device_id: str) -> str:
    return f"device:{device_id}"


def _acl(kind: str, topic: str) -> dict[str, Any]:
    return {"acltype": kind, "topic": topic, "priority": 0, "allow": True}


def device_acls(device_id: str) -> list[dict[str, Any]]:
    """A box publishes only under its own subtree (its replies to commands included) and reads only
    its own commands and acks."""
    own = f"{ROOT}/{device_id}"
    sends = [
        f"{own}/events",
        f"{own}/evidence/+",
        f"{own}/status",
        f"{own}/telemetry",
        command_replies_topic(device_id),
    ]
    reads = [commands_topic(device_id), acks_topic(device_id)]
    return (
        [_acl("publishClientSend", topic) for topic in sends]
        + [_acl("subscribeLiteral", topic) for topic in reads]
        + [_acl("publishClientReceive", topic) for topic in reads]
    )


def ingest_acls(share_group: str = DEFAULT_SHARE_GROUP) -> list[dict[str, Any]]:
    """Workers read every box's messages only through the shared group, and write commands and acks
    (and empty retained payloads, to clear retained messages a box should not have left)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", share_group):
        raise ConfigError(f"share group {share_group!r} must be letters, digits, '_' or '-'")
    filters = [subscription(kind) for kind in _INGEST_READS]
    return (
        [_acl("subscribeLiteral", f"$share/{share_group}/{f}") for f in filters]
        + [_acl("publishClientReceive", f) for f in filters]
        + [_acl("publishClientSend", f"{ROOT}/+/commands"), _acl("publishClientSend", f"{ROOT}/+/acks")]
        # Only to clear a retained message a box left where none belongs (an empty retained
        # payload): Mosquitto 2.0 cannot refuse the retain flag per topic, so the server cleans up.
        + [_acl("publishClientSend", subscription(kind)) for kind in _CLEARABLE]
    )


def admin_acls() -> list[dict[str, Any]]:
    """What ``mosquitto_ctrl dynsec`` needs: the plugin's control topics, nothing of the boxes'."""
    control = "$CONTROL/dynamic-security/#"
    return [
        _acl("publishClientSend", control),
        _acl("publishClientReceive", control),
        _acl("subscribePattern", control),
    ]


def hash_password(password: str, salt: bytes | None = None) -> dict[str, Any]:
    """The plugin's password fields: base64 PBKDF2-HMAC-SHA512 digest, salt and iteration count."""
    if not password:
        raise ConfigError("a broker password must not be empty")
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS, 64)
    return {
        "password": base64.b64encode(digest).decode("ascii"),
        "salt": base64.b64encode(salt).decode("ascii"),
        "iterations": PBKDF2_ITERATIONS,
    }


def _client(
    username: str, password: str, role: str, text: str, bind_client_id: bool = True
) -> dict[str, Any]:
    entry: dict[str, Any] = {"username": username, "textName": text, **hash_password(password)}
    if bind_client_id:
        entry["clientid"] = username  # the session belongs to this login only
    entry["roles"] = [{"rolename": role, "priority": 0}]
    return entry


def build_dynsec(
    devices: Mapping[str, str],
    ingest: Mapping[str, str],
    admin: tuple[str, str] | None = None,
    share_group: str = DEFAULT_SHARE_GROUP,
) -> dict[str, Any]:
    """The plugin's whole configuration: a client and a role per box, a client per ingest worker.

    ``devices`` and ``ingest`` map username (= client id) to password. Everything not granted
    is refused: default access is deny for publish, delivery and subscribe.
    """
    names = [*devices, *ingest, *([admin[0]] if admin else [])]
    for name in names:
        if not _NAME.match(name):
            raise ConfigError(
                f"broker username {name!r} is not allowed: letters, digits, '_' or '-', at most 64, "
                "starting with a letter or digit (it is also the client id and, for a box, a topic level)"
            )
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"broker usernames must be unique; used twice: {', '.join(duplicates)}")
    if not ingest:
        raise ConfigError("at least one ingest worker user is needed (e.g. ingest-1)")
    clients = [_client(d, pw, device_role_name(d), f"edge box {d}") for d, pw in devices.items()]
    clients += [_client(w, pw, INGEST_ROLE, f"ingest worker {w}") for w, pw in ingest.items()]
    roles = [{"rolename": device_role_name(d), "acls": device_acls(d)} for d in devices]
    roles.append({"rolename": INGEST_ROLE, "acls": ingest_acls(share_group)})
    if admin:
        # The administrator may use any client id: mosquitto_ctrl makes a random one.
        clients.append(_client(admin[0], admin[1], ADMIN_ROLE, "mosquitto_ctrl", bind_client_id=False))
        roles.append({"rolename": ADMIN_ROLE, "acls": admin_acls()})
    return {
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": False,
            "subscribe": False,
            "unsubscribe": True,
        },
        "clients": clients,
        "groups": [],
        "roles": roles,
    }


def write_dynsec_file(
    path: Path,
    devices: Mapping[str, str],
    ingest: Mapping[str, str],
    admin: tuple[str, str] | None = None,
    share_group: str = DEFAULT_SHARE_GROUP,
) -> None:
    """Write :func:`build_dynsec` to ``path`` readable by its owner only (it holds password hashes)."""
    text = json.dumps(build_dynsec(devices, ingest, admin, share_group), indent=2) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)


def read_password_list(path: Path) -> dict[str, str]:
    """``name:password`` lines (the plain form ``mosquitto_passwd -U`` takes); # starts a comment."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    users: dict[str, str] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, password = line.partition(":")
        if not sep or not password:
            raise ConfigError(f"{path}:{number}: expected name:password")
        users[name.strip()] = password
    return users


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m streetwatch.broker_security",
        description="Write Mosquitto's dynamic-security file for StreetWatch (stop the broker first; "
        "while it runs, use mosquitto_ctrl or deploy/mosquitto/add-device.sh).",
    )
    parser.add_argument("--devices", type=Path, required=True, help="name:password per line, one per box.")
    parser.add_argument(
        "--ingest", type=Path, required=True, help="name:password per line, one per ingest worker."
    )
    parser.add_argument("--admin", type=Path, help="One name:password line for mosquitto_ctrl (optional).")
    parser.add_argument("--share-group", default=DEFAULT_SHARE_GROUP, help="mqtt.share_group of the server.")
    parser.add_argument("--out", type=Path, required=True, help="The file plugin_opt_config_file names.")
    args = parser.parse_args(argv)
    try:
        admin = None
        if args.admin:
            admins = read_password_list(args.admin)
            if len(admins) != 1:
                raise ConfigError(f"{args.admin} must hold exactly one name:password line")
            admin = next(iter(admins.items()))
        devices, ingest = read_password_list(args.devices), read_password_list(args.ingest)
        write_dynsec_file(args.out, devices, ingest, admin, args.share_group)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(devices)} box(es), {len(ingest)} ingest worker(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""MQTT topic names: built and parsed in one place, for the edge and the server.

Every topic lives under ``streetwatch/v1/<device_id>/``::

    streetwatch/v1/<device_id>/events             edge -> server  ViolationEvent JSON, QoS 1
    streetwatch/v1/<device_id>/evidence/<sha256>  edge -> server  JPEG bytes, QoS 1 (content-addressed)
    streetwatch/v1/<device_id>/status             edge -> server  retained StatusMessage (last will: offline)
    streetwatch/v1/<device_id>/telemetry          edge -> server  TelemetryMessage JSON
    streetwatch/v1/<device_id>/commands           server -> edge  command JSON
    streetwatch/v1/<device_id>/commands/reply     edge -> server  CommandReply JSON
    streetwatch/v1/<device_id>/acks               server -> edge  StoredAck JSON: what the server stored

The device id is also the broker username, so the broker ACL (``deploy/mosquitto/acl``)
can confine each box to its own subtree with a ``%u`` pattern. See ``docs/mqtt.md``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from streetwatch.errors import PayloadError
from streetwatch.events import DEVICE_ID_PATTERN

ROOT = "streetwatch/v1"

TopicKind = Literal["events", "evidence", "status", "telemetry", "commands", "acks", "command_replies"]

_DEVICE_ID = re.compile(DEVICE_ID_PATTERN)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SIMPLE_KINDS: dict[str, TopicKind] = {
    "events": "events",
    "status": "status",
    "telemetry": "telemetry",
    "commands": "commands",
    "acks": "acks",
}


def _device(device_id: str) -> str:
    if not _DEVICE_ID.match(device_id):
        raise PayloadError(
            f"device id {device_id!r} cannot be a topic level: use letters, digits, '_' or '-' (max 64)"
        )
    return f"{ROOT}/{device_id}"


def events_topic(device_id: str) -> str:
    return f"{_device(device_id)}/events"


def evidence_topic(device_id: str, sha256: str) -> str:
    if not _SHA256.match(sha256):
        raise PayloadError(f"evidence hash {sha256!r} is not 64 lowercase hex digits")
    return f"{_device(device_id)}/evidence/{sha256}"


def status_topic(device_id: str) -> str:
    return f"{_device(device_id)}/status"


def telemetry_topic(device_id: str) -> str:
    return f"{_device(device_id)}/telemetry"


def commands_topic(device_id: str) -> str:
    return f"{_device(device_id)}/commands"


def command_replies_topic(device_id: str) -> str:
    """Where a box answers its commands (accepted / progress / done / failed)."""
    return f"{_device(device_id)}/commands/reply"


def acks_topic(device_id: str) -> str:
    """Where the server tells a box which of its messages are stored (end-to-end delivery)."""
    return f"{_device(device_id)}/acks"


def subscription(kind: TopicKind, device_id: str = "+") -> str:
    """A topic filter for one kind of message, for one device or (default) all devices."""
    base = f"{ROOT}/{device_id}" if device_id == "+" else _device(device_id)
    if kind == "evidence":
        return f"{base}/evidence/+"
    if kind == "command_replies":
        return f"{base}/commands/reply"
    return f"{base}/{kind}"


@dataclass(frozen=True)
class ParsedTopic:
    """What a received topic names: the device, the kind of message and (evidence) the hash."""

    device_id: str
    kind: TopicKind
    sha256: str | None = None


def parse_topic(topic: str) -> ParsedTopic:
    """Split a StreetWatch topic; raise :class:`PayloadError` naming what does not fit."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != ROOT:
        raise PayloadError(f"topic {topic!r} is not under {ROOT}/<device_id>/")
    device_id, kind, rest = parts[2], parts[3], parts[4:]
    if not _DEVICE_ID.match(device_id):
        raise PayloadError(f"topic {topic!r} has an invalid device id {device_id!r}")
    if kind == "evidence":
        if len(rest) != 1 or not _SHA256.match(rest[0]):
            raise PayloadError(f"evidence topic {topic!r} must end in /evidence/<64 lowercase hex digits>")
        return ParsedTopic(device_id, "evidence", rest[0])
    if kind == "commands" and rest == ["reply"]:
        return ParsedTopic(device_id, "command_replies")
    simple = _SIMPLE_KINDS.get(kind)
    if simple is not None and not rest:
        return ParsedTopic(device_id, simple)
    raise PayloadError(f"topic {topic!r} is not a StreetWatch topic (unknown kind {kind!r})")

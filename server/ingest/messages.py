"""Turning one received MQTT message into something storable, or into a rejection with a reason.

Everything here is checked before the database transaction starts: the topic,
the size, the schema (strictly: :mod:`streetwatch.wire_json`), that the device in
the payload is the device in the topic (a box may only speak for itself), that a
telemetry track is plausible (:func:`server.cases.coverage.implausible_track`), and
that evidence is a JPEG whose declared size is within the limits, decodes, and
hashes to the SHA-256 in its topic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from server.cases.coverage import implausible_track
from server.evidence_store import (
    DigestMismatchError,
    EvidenceStore,
    ImageLimits,
    ImageTooLargeError,
    StoredEvidence,
    UndecodableImageError,
)
from server.settings import IngestLimits
from streetwatch.errors import NewerSchemaError, PayloadError, StorageError
from streetwatch.events import ViolationEvent, utcnow
from streetwatch.messages import CommandReply, StatusMessage, TelemetryMessage
from streetwatch.topics import parse_topic


class RejectReason(str, Enum):
    """Why a message was refused; the key of the ``rejections`` counters."""

    bad_topic = "bad_topic"
    oversized = "oversized"
    malformed = "malformed"
    spoofed = "spoofed"
    undecodable_image = "undecodable_image"
    digest_mismatch = "digest_mismatch"
    evidence_quota = "evidence_quota"  # the device holds too many images no event names
    retained = "retained"  # only status may be retained; anything else would return on every subscribe
    newer_schema = "newer_schema"  # an event of a schema version this server does not read yet
    storage_error = "storage_error"
    processing_error = "processing_error"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: RejectReason
    detail: str


@dataclass(frozen=True, slots=True)
class EvidenceReceived:
    device_id: str
    stored: StoredEvidence


Decoded = ViolationEvent | EvidenceReceived | StatusMessage | TelemetryMessage | CommandReply | Rejected


JsonMessage = ViolationEvent | StatusMessage | TelemetryMessage | CommandReply


@dataclass(frozen=True, slots=True)
class _JsonKind:
    """How one JSON topic kind is read: its name in messages, its size limit, its parser."""

    what: str
    limit: Callable[[IngestLimits], int]
    parse: Callable[[bytes], JsonMessage]


_JSON_KINDS: dict[str, _JsonKind] = {
    "events": _JsonKind("event", lambda lim: lim.max_event_bytes, ViolationEvent.from_json),
    "status": _JsonKind("status", lambda lim: lim.max_status_bytes, StatusMessage.from_json),
    "telemetry": _JsonKind("telemetry", lambda lim: lim.max_telemetry_bytes, TelemetryMessage.from_json),
    # A reply is small (a reason of at most 1000 characters): the status limit fits it.
    "command_replies": _JsonKind("command reply", lambda lim: lim.max_status_bytes, CommandReply.from_json),
}


def decode(
    topic: str, payload: bytes, limits: IngestLimits, store: EvidenceStore, now: datetime | None = None
) -> Decoded:
    """Validate one message; evidence is written to ``store`` here (it is idempotent).

    ``now`` (default: the clock) is what telemetry times are judged against.
    """
    try:
        parsed = parse_topic(topic)
    except PayloadError as exc:
        return Rejected(RejectReason.bad_topic, str(exc))
    size = len(payload)
    kind = _JSON_KINDS.get(parsed.kind)
    if kind is not None:
        limit = kind.limit(limits)
        if size > limit:
            return _too_big(kind.what, size, limit)
        try:
            message = kind.parse(payload)
        except NewerSchemaError as exc:
            return Rejected(RejectReason.newer_schema, str(exc))
        except PayloadError as exc:
            return Rejected(RejectReason.malformed, str(exc))
        if isinstance(message, TelemetryMessage):
            implausible = implausible_track(message.coverage, now or utcnow(), limits)
            if implausible is not None:
                return Rejected(RejectReason.malformed, f"telemetry refused: {implausible}")
        return _same_device(message, parsed.device_id, topic)
    if parsed.kind == "evidence":
        if size > limits.max_evidence_bytes:
            return _too_big("evidence", size, limits.max_evidence_bytes)
        try:
            stored = store.put(
                payload,
                expected_sha256=parsed.sha256,
                limits=ImageLimits(max_side=limits.max_evidence_side, max_pixels=limits.max_evidence_pixels),
            )
        except DigestMismatchError as exc:
            return Rejected(RejectReason.digest_mismatch, str(exc))
        except ImageTooLargeError as exc:
            return Rejected(RejectReason.malformed, str(exc))
        except UndecodableImageError as exc:
            return Rejected(RejectReason.undecodable_image, str(exc))
        except StorageError as exc:
            return Rejected(RejectReason.storage_error, str(exc))
        return EvidenceReceived(parsed.device_id, stored)
    return Rejected(
        RejectReason.bad_topic, f"topic {topic!r} carries {parsed.kind}, which the server does not read"
    )


def _too_big(what: str, size: int, limit: int) -> Rejected:
    return Rejected(RejectReason.oversized, f"{what} payload is {size} bytes; the limit is {limit}")


def _same_device(message: JsonMessage, topic_device: str, topic: str) -> Decoded:
    payload_device = message.device_id
    if payload_device != topic_device:
        return Rejected(
            RejectReason.spoofed,
            f"payload names device {payload_device!r} but arrived on {topic!r} of device {topic_device!r}",
        )
    return message

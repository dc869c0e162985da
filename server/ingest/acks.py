"""End-to-end acknowledgements: telling each box which of its messages the server has stored.

    keys = [ack_key(topic, payload, decoded), ...]        # on the decode lanes
    for topic, payload in stored_acks(keys):              # after the batch's commit
        client.publish(topic, payload, qos=1)

A box deletes an outbox row only when a :class:`~streetwatch.messages.StoredAck` names
it (``docs/mqtt.md``, "acks"). An id is acknowledged once its batch has committed and
the message was stored, was a duplicate of a stored one, or was refused for a reason a
re-send cannot change. A refusal that may pass (:data:`MAY_PASS`: the evidence disk was
full, the device's quota of unnamed images, or an event of a schema version newer than this
server reads) is never acknowledged, so the box sends the message again later; a database
outage never commits, so nothing of that batch is acknowledged either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from server.ingest.messages import Decoded, EvidenceReceived, Rejected, RejectReason
from streetwatch.errors import PayloadError
from streetwatch.events import ViolationEvent
from streetwatch.messages import stored_ack_batches
from streetwatch.topics import acks_topic, parse_topic

#: Refusals that a later re-send may get past, so the box must keep the message and send it again:
#: the evidence disk was full; the device's quota of images no event names yet was full (its
#: event is usually on the way and will name them); the event's schema is newer than this server
#: reads (a box upgraded first: the server's upgrade will read what the box kept).
MAY_PASS = frozenset({RejectReason.storage_error.value, "evidence_quota", RejectReason.newer_schema.value})

# A refused event is acknowledged by the event_id the box gave it, found without parsing the
# payload (it may be huge, deeply nested or not JSON at all): the box writes it near the start.
_EVENT_ID = re.compile(
    rb'"event_id"\s*:\s*"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"'
)
_EVENT_ID_WINDOW = 4096


@dataclass(frozen=True, slots=True)
class AckKey:
    """One id a box may delete from its outbox once the batch holding it has committed."""

    device_id: str
    kind: Literal["events", "evidence"]
    id: str


def ack_key(topic: str, payload: bytes, decoded: Decoded) -> AckKey | None:
    """What to acknowledge for one message once stored, or None (nothing the box keeps, or may pass)."""
    if isinstance(decoded, ViolationEvent):
        return AckKey(decoded.device_id, "events", str(decoded.event_id))
    if isinstance(decoded, EvidenceReceived):
        return AckKey(decoded.device_id, "evidence", decoded.stored.sha256)
    if not isinstance(decoded, Rejected) or decoded.reason.value in MAY_PASS:
        return None
    try:
        parsed = parse_topic(topic)
    except PayloadError:
        return None  # no device to tell
    if parsed.kind == "evidence" and parsed.sha256 is not None:
        return AckKey(parsed.device_id, "evidence", parsed.sha256)
    if parsed.kind == "events":
        found = _EVENT_ID.search(payload, 0, _EVENT_ID_WINDOW)
        if found is not None:
            return AckKey(parsed.device_id, "events", found.group(1).decode().lower())
    return None


def stored_acks(keys: Iterable[AckKey | None]) -> Iterator[tuple[str, bytes]]:
    """``(topic, payload)`` of the StoredAck messages naming ``keys``: per device, in order,
    at most :data:`~streetwatch.messages.MAX_ACK_IDS` ids per list, each id once."""
    per_device: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
    for key in keys:
        if key is None:
            continue
        seen_events, seen_evidence = per_device.setdefault(key.device_id, ({}, {}))
        # A dict keeps the order and drops repeats.
        (seen_events if key.kind == "events" else seen_evidence)[key.id] = None
    for device_id in sorted(per_device):
        events, evidence = list(per_device[device_id][0]), list(per_device[device_id][1])
        for ack in stored_ack_batches(events, evidence):
            yield acks_topic(device_id), ack.to_json()

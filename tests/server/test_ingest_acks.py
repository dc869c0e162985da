"""Which ids a committed batch acknowledges to each box, and how they are packed."""

from __future__ import annotations

import json
import uuid

from server.evidence_store import StoredEvidence
from server.ingest.acks import AckKey, ack_key, stored_acks
from server.ingest.messages import EvidenceReceived, Rejected, RejectReason
from streetwatch.messages import MAX_ACK_IDS, StoredAck
from streetwatch.topics import events_topic, evidence_topic
from tests.server.factories import make_event

SHA = "ab" * 32


def test_stored_messages_and_final_refusals_are_acked_but_a_full_disk_is_not() -> None:
    event = make_event(device_id="van-01")
    image = StoredEvidence(
        sha256=SHA, path="ab/ab/x.jpg", size_bytes=10, content_type="image/jpeg", width=4, height=4
    )
    raw = json.dumps({"schema_version": 1, "event_id": str(event.event_id), "score": "high"}).encode()
    assert ack_key(events_topic("van-01"), b"", event) == AckKey("van-01", "events", str(event.event_id))
    assert ack_key(evidence_topic("van-01", SHA), b"", EvidenceReceived("van-01", image)) == AckKey(
        "van-01", "evidence", SHA
    )
    malformed = Rejected(RejectReason.malformed, "score")
    assert ack_key(events_topic("van-01"), raw, malformed) == AckKey("van-01", "events", str(event.event_id))
    assert ack_key(events_topic("van-01"), b"{not json", malformed) is None  # no id to name
    mismatch = Rejected(RejectReason.digest_mismatch, "hash")
    assert ack_key(evidence_topic("van-01", SHA), b"x", mismatch) == AckKey("van-01", "evidence", SHA)
    full = Rejected(RejectReason.storage_error, "No space left on device")
    assert ack_key(evidence_topic("van-01", SHA), b"x", full) is None
    # A box upgraded before its server keeps its newer events until the server reads them.
    newer = json.dumps({"schema_version": 99, "event_id": str(event.event_id)}).encode()
    assert ack_key(events_topic("van-01"), newer, Rejected(RejectReason.newer_schema, "99")) is None
    assert ack_key("streetwatch/v1/bad!id/events", raw, Rejected(RejectReason.bad_topic, "")) is None


def test_acks_are_per_device_without_repeats_and_at_most_the_limit_per_list() -> None:
    ids = [str(uuid.uuid4()) for _ in range(MAX_ACK_IDS + 7)]
    keys = [AckKey("van-02", "events", i) for i in ids] + [AckKey("van-02", "events", ids[0])]
    keys += [AckKey("van-01", "evidence", SHA), None]
    sent = list(stored_acks(keys))
    assert [topic for topic, _ in sent] == ["streetwatch/v1/van-01/acks"] + ["streetwatch/v1/van-02/acks"] * 2
    acks = [StoredAck.from_json(payload) for _, payload in sent]
    assert acks[0].evidence == [SHA] and acks[0].events == []
    assert [str(i) for i in acks[1].events + acks[2].events] == ids
    assert len(acks[1].events) == MAX_ACK_IDS

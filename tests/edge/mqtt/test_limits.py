"""The outbox fills up while the broker is away: evidence goes first, oldest first, all counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from tests.edge.mqtt.support import Collector, event_id, make_event, make_evidence, sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-11"
MIB = 1024 * 1024


def test_size_limit_drops_oldest_evidence_counts_it_and_loses_nothing_else(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    broker.stop()
    config = sink_config(broker.port, tmp_path / "outbox.sqlite3", outbox={"max_bytes": MIB})
    sink = OutboxSink.open(config, device_id=DEVICE)
    count = 30
    evidence = [make_evidence(i, size=40_000) for i in range(count)]  # ~60 kB per event: 1.8 MB in all
    try:
        for i in range(count):
            sink.emit(make_event(DEVICE, i, evidence[i].ref), evidence[i])
        depth = sink.outbox.depth()
        assert depth.bytes <= MIB
        assert depth.events == count  # no event was dropped: there was evidence to drop instead
        dropped = sink.outbox.dropped()
        assert dropped["evidence_size_limit"] == 2 * count - depth.evidence
        assert "event_size_limit" not in dropped

        broker.start()
        assert sink.wait_until_delivered(15)
        expected = {str(event_id(DEVICE, i)) for i in range(count)}
        assert collector.wait_for(lambda c: expected <= set(c.events), 10)
        sink.link.send_telemetry_now()
        assert collector.wait_for(lambda c: len(c.telemetry) >= 1, 10)
    finally:
        sink.close()

    arrived = {sha for sha, _ in collector.evidence}
    kept = depth.evidence
    # Oldest first: exactly the newest `kept` images arrived, none of the dropped ones.
    newest = [h for e in evidence for h in (e.ref.frame_sha256, e.ref.crop_sha256)][-kept:]
    assert arrived == set(newest)
    report = collector.telemetry[-1]
    assert report["dropped"]["evidence_size_limit"] == dropped["evidence_size_limit"]
    assert report["outbox"] == {
        "events": 0,
        "evidence": 0,
        "bytes": 0,
        "oldest_at": None,
        "sent_events": 0,
        "sent_evidence": 0,
        "resent": 0,
    }


def test_an_image_bigger_than_the_broker_accepts_is_dropped_and_counted_not_retried_forever(
    tmp_path: Path,
) -> None:
    with MosquittoBroker(tmp_path / "broker", extra_conf="max_packet_size 60000\n") as small_broker:
        collector = Collector(small_broker.port)
        sink = OutboxSink.open(sink_config(small_broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
        try:
            assert collector.subscribed.wait(5)
            big = make_evidence(0, size=100_000)  # frame ~100 kB (too big), crop ~50 kB (fits)
            sink.emit(make_event(DEVICE, 0, big.ref), big)
            sink.emit(make_event(DEVICE, 1), None)
            assert sink.wait_until_delivered(10)
            assert collector.wait_for(lambda c: len(c.events) == 2, 5)
            assert sink.outbox.dropped() == {"evidence_too_large_for_broker": 1}
        finally:
            sink.close()
            collector.close()
    assert [sha for sha, _ in collector.evidence] == [big.ref.crop_sha256]

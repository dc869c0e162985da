"""End to end against a real Mosquitto: order, status, and a broker outage mid-stream."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from edge.outbox import Outbox, OutboxLimits
from streetwatch.errors import ConfigError, PayloadError, StorageError
from streetwatch.events import Position
from streetwatch.messages import TelemetryMessage
from tests.edge.mqtt.support import T0, Collector, event_id, make_event, make_evidence, sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-07"


def test_evidence_goes_before_its_event_and_status_is_online_then_offline(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    try:
        for i in range(5):
            evidence = make_evidence(i, clean=True)
            sink.emit(make_event(DEVICE, i, evidence.ref), evidence)
        assert sink.wait_until_delivered(10)
        assert collector.wait_for(lambda c: len(c.events) == 5)
    finally:
        sink.close()
    assert collector.wait_for(lambda c: any(s["state"] == "offline" for s in c.status))
    assert collector.status[0]["state"] == "online"
    assert collector.status[0]["device_id"] == DEVICE
    for i in range(5):
        ref = make_evidence(i, clean=True).ref
        position = collector.order.index(f"event:{event_id(DEVICE, i)}")
        assert collector.order.index(f"evidence:{ref.frame_sha256}") < position
        assert collector.order.index(f"evidence:{ref.crop_sha256}") < position
        assert collector.order.index(f"evidence:{ref.clean_sha256}") < position
    assert collector.events == [str(event_id(DEVICE, i)) for i in range(5)]


def test_repeated_evidence_is_sent_once(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    try:
        evidence = make_evidence(0)
        sink.emit(make_event(DEVICE, 0, evidence.ref), evidence)
        sink.emit(make_event(DEVICE, 1, evidence.ref), evidence)  # an update with the same best frame
        assert sink.wait_until_delivered(10)
        assert collector.wait_for(lambda c: len(c.events) == 2)
    finally:
        sink.close()
    assert len(collector.evidence) == 2  # frame + crop, once


def test_broker_restart_mid_stream_loses_nothing(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    total = 600
    try:
        for i in range(200):
            sink.emit(make_event(DEVICE, i), None)
        broker.stop()
        for i in range(200, 400):  # the detection loop keeps going while the broker is away
            sink.emit(make_event(DEVICE, i), None)
        assert not sink.link.connected
        time.sleep(1.0)
        broker.start()
        for i in range(400, total):
            sink.emit(make_event(DEVICE, i), None)
        assert sink.wait_until_delivered(15), "the outbox did not drain after the broker came back"
        assert sink.outbox.depth().events == 0
        expected = {str(event_id(DEVICE, i)) for i in range(total)}
        assert collector.wait_for(lambda c: expected <= set(c.events), 15)
    finally:
        sink.close()
    # At least once: a repeat is only ever a whole event with the same event_id.
    assert set(collector.events) == expected


def test_close_gives_a_live_link_time_to_drain_and_keeps_the_rest_for_next_start(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    sink = OutboxSink.open(sink_config(broker.port, path), device_id=DEVICE)
    assert collector.wait_for(lambda c: bool(c.status), 10)  # connected
    for i in range(300):
        sink.emit(make_event(DEVICE, i), None)
    sink.close()  # no explicit wait: close drains while the link is up
    left = Outbox(path, OutboxLimits(max_bytes=1 << 30, max_age_s=3600))
    assert left.depth().events == 0
    left.close()
    expected = {str(event_id(DEVICE, i)) for i in range(300)}
    assert collector.wait_for(lambda c: expected <= set(c.events), 10)

    broker.stop()
    offline = OutboxSink.open(sink_config(broker.port, path), device_id=DEVICE)
    offline.emit(make_event(DEVICE, 300), None)
    offline.close()  # no link: returns at once, the event waits on disk
    left = Outbox(path, OutboxLimits(max_bytes=1 << 30, max_age_s=3600))
    assert left.depth().events == 1
    left.close()


def test_config_mistakes_are_named_before_anything_starts(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-password"
    with pytest.raises(ConfigError, match="no-such-password"):
        OutboxSink.open(
            sink_config(1883, tmp_path / "o.sqlite3", password_file=str(missing)), device_id=DEVICE
        )
    assert not (tmp_path / "o.sqlite3").exists()
    empty = tmp_path / "empty-password"
    empty.write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        OutboxSink.open(sink_config(1883, tmp_path / "o.sqlite3", password_file=str(empty)), device_id=DEVICE)


def test_an_event_of_another_device_is_refused_with_a_clear_error(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    try:
        with pytest.raises(PayloadError, match="names device 'van-99'"):
            sink.emit(make_event("van-99", 0), None)
        assert sink.outbox.depth().events == 0
    finally:
        sink.close()
    with pytest.raises(StorageError, match="closed"):
        sink.emit(make_event(DEVICE, 0), None)


def test_telemetry_reports_frames_coverage_and_outbox(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    try:
        assert collector.wait_for(lambda c: bool(c.status), 10)
        for i in range(50):
            sink.link.telemetry.note_frame()
            position = Position(lat=31.2 + i * 0.001, lon=121.4, heading_deg=0.0, source="nmea")
            sink.link.telemetry.note_position(position, T0 + timedelta(seconds=i))
        sink.link.send_telemetry_now()
        assert collector.wait_for(lambda c: len(c.telemetry) == 1, 10)
    finally:
        sink.close()
    report = TelemetryMessage.model_validate(collector.telemetry[0])
    assert report.frames == 50 and report.fps > 0
    assert len(report.coverage) == 50  # 111 m apart: none thinned away
    assert report.coverage[0].lat == 31.2 and report.coverage[-1].at == T0 + timedelta(seconds=49)
    assert report.outbox.events == 0 and report.dropped == {}

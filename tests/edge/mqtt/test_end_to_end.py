"""A row leaves the box's outbox only when the server acknowledges it as stored, against a real Mosquitto.

The server is played by :class:`tests.edge.mqtt.support.Collector`, a real MQTT client
that publishes ``StoredAck`` on ``streetwatch/v1/<device>/acks`` (or, ``acking=False``,
one that receives but never acknowledges, like an ingest that cannot store).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from edge.mqtt.publisher import OutboxPublisher
from edge.outbox import Outbox, OutboxLimits
from streetwatch.messages import StoredAck
from streetwatch.topics import acks_topic
from tests.edge.mqtt.support import Collector, event_id, make_event, make_evidence, sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-81"


def left(path: Path) -> tuple[int, int]:
    box = Outbox(path, OutboxLimits(max_bytes=1 << 30, max_age_s=3600))
    depth = box.depth()
    box.close()
    return depth.events, depth.evidence


def kill(broker: MosquittoBroker) -> None:
    """SIGKILL: the broker saves nothing on the way out, so what it queued since its last save is gone."""
    assert broker.proc is not None
    broker.proc.kill()
    broker.proc.wait(10)
    broker.proc = None


def test_a_puback_is_not_enough_rows_wait_for_the_server_and_are_resent(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    server = Collector(broker.port, acking=False)  # receives, cannot store: never acknowledges
    assert server.subscribed.wait(5)
    sink = OutboxSink.open(
        sink_config(broker.port, path, ack_timeout_s=1, ack_timeout_max_s=2), device_id=DEVICE
    )
    try:
        for i in range(20):
            sink.emit(make_event(DEVICE, i), None)
        assert server.wait_for(lambda c: len(set(c.events)) == 20, 10)
        assert not sink.wait_until_delivered(0.5), "the broker's PUBACK alone must not count as delivered"
        report = sink.link.telemetry_message()
        assert report.outbox.events == 20 and report.outbox.sent_events == 20
        # No acknowledgement within ack_timeout_s: the same events go out again.
        assert server.wait_for(lambda c: len(c.events) >= 40, 10)

        server.acking = True  # the server can store again (ingest back, disk freed, ...)
        assert sink.wait_until_delivered(15)
        report = sink.link.telemetry_message()
        assert report.outbox.events == 0 and report.outbox.sent_events == 0
        assert report.outbox.resent >= 20
    finally:
        sink.close()
        server.close()
    assert left(path) == (0, 0)
    assert set(server.events) == {str(event_id(DEVICE, i)) for i in range(20)}


def test_evidence_the_server_could_not_store_is_resent_until_it_is(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    server = Collector(broker.port, acks_evidence=False)  # evidence disk full: events only
    assert server.subscribed.wait(5)
    path = tmp_path / "outbox.sqlite3"
    sink = OutboxSink.open(
        sink_config(broker.port, path, ack_timeout_s=1, ack_timeout_max_s=1), device_id=DEVICE
    )
    evidence = make_evidence(0)
    try:
        sink.emit(make_event(DEVICE, 0, evidence.ref), evidence)
        assert server.wait_for(lambda c: len(c.events) == 1 and len(c.evidence) >= 4, 10)  # images re-sent
        assert sink.outbox.depth().events == 0 and sink.outbox.depth().evidence == 2
        server.acks_evidence = True  # space is back
        assert sink.wait_until_delivered(10)
    finally:
        sink.close()
        server.close()
    assert left(path) == (0, 0)


def test_no_matching_subscribers_is_not_delivered(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "outbox.sqlite3"
    sink = OutboxSink.open(sink_config(broker.port, path), device_id=DEVICE)
    try:
        for i in range(5):
            sink.emit(make_event(DEVICE, i), None)
        deadline = time.monotonic() + 10
        while sink._publisher.unheard < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink._publisher.unheard >= 5, "the broker should answer 0x10: nobody subscribes"
        depth = sink.outbox.depth()
        assert depth.events == 5 and depth.sent_events == 0
        assert "No matching subscribers" in caplog.text

        server = Collector(broker.port)  # the ingest subscribes (again)
        try:
            assert server.subscribed.wait(5)
            assert sink.wait_until_delivered(15)
            assert server.wait_for(lambda c: len(set(c.events)) == 5, 5)
        finally:
            server.close()
    finally:
        sink.close()
    assert left(path) == (0, 0)


def test_a_broker_killed_after_its_puback_loses_nothing(broker: MosquittoBroker, tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    monitor = Collector(broker.port, acking=False)  # any other subscriber turns PUBACK into success
    assert monitor.subscribed.wait(5)
    sink = OutboxSink.open(
        sink_config(broker.port, path, ack_timeout_s=2, ack_timeout_max_s=4), device_id=DEVICE
    )
    try:
        for i in range(50):
            sink.emit(make_event(DEVICE, i), None)
        assert monitor.wait_for(lambda c: len(set(c.events)) == 50, 10)
        monitor.close()
        kill(broker)  # with everything the box had sent, acknowledged by the broker
        assert sink.outbox.depth().events == 50, "the box must not have let go of anything"
        time.sleep(1.0)
        broker.start()
        server = Collector(broker.port)
        try:
            assert server.subscribed.wait(5)
            assert sink.wait_until_delivered(20)
            assert server.wait_for(lambda c: len(set(c.events)) == 50, 5)
        finally:
            server.close()
    finally:
        sink.close()
    assert left(path) == (0, 0)


def test_after_a_restart_the_box_resends_what_the_server_never_acknowledged(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    silent = Collector(broker.port, acking=False)
    assert silent.subscribed.wait(5)
    patient = {"ack_timeout_s": 600, "ack_timeout_max_s": 600}  # only the restart can trigger a re-send
    first = OutboxSink.open(sink_config(broker.port, path, **patient), device_id=DEVICE)
    for i in range(30):
        first.emit(make_event(DEVICE, i), None)
    assert silent.wait_for(lambda c: len(set(c.events)) == 30, 10)
    first.close(drain_timeout_s=0)
    silent.close()
    assert left(path) == (30, 0)

    server = Collector(broker.port)
    assert server.subscribed.wait(5)
    second = OutboxSink.open(sink_config(broker.port, path, **patient), device_id=DEVICE)
    try:
        assert second.wait_until_delivered(10)
        assert server.wait_for(lambda c: len(set(c.events)) == 30, 5)
    finally:
        second.close()
        server.close()
    assert left(path) == (0, 0)


def test_resend_waits_grow_and_are_capped() -> None:
    publisher = OutboxPublisher.__new__(OutboxPublisher)
    publisher._stored_ack_timeout_s = 60.0
    publisher._stored_ack_timeout_max_s = 900.0
    waits = [publisher._wait_for_server(attempts) for attempts in range(8)]
    assert waits == [60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0, 900.0]


def test_an_acknowledgement_that_does_not_parse_is_logged_and_ignored(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = Collector(broker.port, acking=False)
    assert server.subscribed.wait(5)
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    try:
        sink.emit(make_event(DEVICE, 0), None)
        assert server.wait_for(lambda c: len(c.events) == 1, 10)
        topic = acks_topic(DEVICE)
        bad_acks = (b"{not json", b'{"events": ["not-a-uuid"]}', b'{"events": [], "extra": 1}', b"[" * 5000)
        for bad in bad_acks:
            server.client.publish(topic, bad, qos=1)
        time.sleep(1.0)
        assert sink.outbox.depth().events == 1, "nothing may be deleted on a malformed acknowledgement"
        server.client.publish(topic, StoredAck(events=[event_id(DEVICE, 0)]).to_json(), qos=1)
        assert sink.wait_until_delivered(10)
    finally:
        sink.close()
        server.close()
    assert "does not parse" in caplog.text

"""The device link and the outbox sink riding on it, against a real Mosquitto: what the split must keep."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from edge.mqtt import MqttLink, OutboxSink
from streetwatch.messages import StoredAck
from streetwatch.topics import acks_topic
from tests.edge.mqtt.support import Collector, event_id, make_event, sink_config
from tests.edge.mqtt.test_end_to_end import left
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-83"


def test_acks_that_arrive_before_the_outbox_is_attached_still_delete_its_rows(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    # The broker hands a persistent session its queued acks at connect, which can be before the
    # pipeline has opened the outbox on the link: those acks must not be lost.
    path = tmp_path / "outbox.sqlite3"
    config = sink_config(broker.port, path)
    server = Collector(broker.port, acking=False)  # receives, never acknowledges by itself
    assert server.subscribed.wait(5)
    try:
        first = OutboxSink.open(config, device_id=DEVICE)
        for i in range(3):
            first.emit(make_event(DEVICE, i), None)
        assert server.wait_for(lambda c: len(set(c.events)) == 3, 10)
        first.close(drain_timeout_s=0)
        assert left(path) == (3, 0)

        link = MqttLink(config, device_id=DEVICE)
        try:
            deadline = time.monotonic() + 10
            while not link.connected and time.monotonic() < deadline:
                time.sleep(0.05)
            ack = StoredAck(events=[str(event_id(DEVICE, i)) for i in range(3)], evidence=[])
            server.client.publish(acks_topic(DEVICE), ack.to_json(), qos=1)
            while not link._early_acks and time.monotonic() < deadline:
                time.sleep(0.05)
            assert link._early_acks, "the ack did not reach the link"
            sink = OutboxSink(config, link)  # the outbox is attached after its acks arrived
            assert sink.wait_until_delivered(10), "acks received before the outbox was attached were lost"
            sink.close()
        finally:
            link.close()
        assert left(path) == (0, 0)
    finally:
        server.close()


def test_a_starting_link_says_so_from_its_first_status(collector: Collector, broker: MosquittoBroker) -> None:
    link = MqttLink(sink_config(broker.port, Path("unused.sqlite3")), device_id=DEVICE, starting=True)
    try:
        assert collector.wait_for(lambda c: bool(c.status), 10)
        assert collector.status[0]["state"] == "online" and collector.status[0]["phase"] == "starting"
        link.running()
        assert collector.wait_for(lambda c: c.status[-1].get("phase") == "running", 10)
    finally:
        link.close()
    assert collector.wait_for(lambda c: c.status[-1]["state"] == "offline", 10)

"""Wrong password and ACL violations: a clear error, retries with backoff, no crash, nothing lost.

The broker runs the shipped ACL (deploy/mosquitto/acl) with per-device passwords.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.mqtt import OutboxSink
from streetwatch.paths import deploy_dir
from tests.edge.mqtt.support import Collector, event_id, make_event, sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-31"
SHIPPED_ACL = (deploy_dir() / "mosquitto" / "acl").read_text()


def start_broker(workdir: Path, port: int | None, users: dict[str, str], acl: str) -> MosquittoBroker:
    broker = MosquittoBroker(workdir, port=port, users={**users, "ingest": "ingest-pw"}, acl=acl)
    broker.start()
    return broker


def connection_attempts(broker: MosquittoBroker) -> int:
    return broker.log.read_text().count("New connection from")


def test_wrong_password_is_one_clear_error_then_backoff_and_delivery_once_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    broker = start_broker(tmp_path / "broker", None, {DEVICE: "right"}, SHIPPED_ACL)
    collector = Collector(broker.port, "ingest", "ingest-pw")
    sink = OutboxSink.open(
        sink_config(broker.port, tmp_path / "outbox.sqlite3", password="wrong"), device_id=DEVICE
    )
    try:
        assert collector.subscribed.wait(5)
        sink.emit(make_event(DEVICE, 0), None)
        time.sleep(2.5)
        refusals = [r for r in caplog.records if "refused the connection" in r.getMessage()]
        assert len(refusals) == 1, "one log line per state change, not one per retry"
        assert refusals[0].levelno == logging.ERROR
        assert "'van-31'" in refusals[0].getMessage()
        assert "password" in refusals[0].getMessage().lower()
        assert connection_attempts(broker) >= 4  # it kept retrying
        assert connection_attempts(broker) <= 30  # ...with backoff, not in a tight loop
        assert sink.outbox.depth().events == 1  # kept, not dropped
        sink.emit(make_event(DEVICE, 1), None)  # the pipeline keeps going

        # The operator fixes the broker's password file: the box connects and delivers everything.
        broker.stop()
        broker = start_broker(tmp_path / "broker", broker.port, {DEVICE: "wrong"}, SHIPPED_ACL)
        assert sink.wait_until_delivered(10)
        expected = {str(event_id(DEVICE, i)) for i in range(2)}
        assert collector.wait_for(lambda c: expected <= set(c.events), 10)
    finally:
        sink.close()
        collector.close()
        broker.stop()


def test_acl_violation_keeps_the_message_and_retries_with_backoff(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # A broker whose ACL lets boxes announce their status but not publish events.
    no_events = "\n".join(line for line in SHIPPED_ACL.splitlines() if "%u/events" not in line) + "\n"
    broker = start_broker(tmp_path / "broker", None, {DEVICE: "pw"}, no_events)
    collector = Collector(broker.port, "ingest", "ingest-pw")
    sink = OutboxSink.open(
        sink_config(broker.port, tmp_path / "outbox.sqlite3", password="pw"), device_id=DEVICE
    )
    try:
        assert collector.subscribed.wait(5)
        sink.emit(make_event(DEVICE, 0), None)
        deadline = time.monotonic() + 5
        while sink._publisher.refused < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink._publisher.refused >= 2, "the refused event should be retried"
        errors = [
            r for r in caplog.records if "Not authorized" in r.getMessage() and r.levelno == logging.ERROR
        ]
        assert len(errors) == 1
        assert "ACL" in errors[0].getMessage()
        assert sink.outbox.depth().events == 1
        assert collector.events == []

        # With the shipped ACL the same message goes through: nothing was lost meanwhile.
        broker.stop()
        broker = start_broker(tmp_path / "broker", broker.port, {DEVICE: "pw"}, SHIPPED_ACL)
        assert sink.wait_until_delivered(10)
        assert collector.wait_for(lambda c: str(event_id(DEVICE, 0)) in c.events, 10)
    finally:
        sink.close()
        collector.close()
        broker.stop()


def test_shipped_acl_keeps_a_box_out_of_other_boxes_topics(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = start_broker(tmp_path / "broker", None, {"van-41": "a", "van-42": "b"}, SHIPPED_ACL)
    collector = Collector(broker.port, "ingest", "ingest-pw")
    # van-41's credentials, but publishing as van-42: every publish is refused.
    sink = OutboxSink.open(
        sink_config(broker.port, tmp_path / "outbox.sqlite3", username="van-41", password="a"),
        device_id="van-42",
    )
    try:
        assert collector.subscribed.wait(5)
        sink.emit(make_event("van-42", 0), None)
        time.sleep(2.0)
        assert collector.events == [] and collector.status == []
        assert sink.outbox.depth().events == 1
        assert connection_attempts(broker) >= 3  # still trying, with backoff
    finally:
        sink.close()
        collector.close()
        broker.stop()
    refusals = [r for r in caplog.records if "Not authorized" in r.getMessage()]
    assert refusals and "'van-41'" in refusals[0].getMessage()


def test_shipped_acl_lets_a_box_read_only_its_own_commands(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker", None, {"van-41": "a", "van-42": "b"}, SHIPPED_ACL)
    received: list[str] = []
    snoop = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="van-41", protocol=mqtt.MQTTv5)
    snoop.username_pw_set("van-41", "a")
    snoop.on_message = lambda c, u, m: received.append(m.topic)
    subscribed = threading.Event()
    snoop.on_subscribe = lambda *_: subscribed.set()
    snoop.connect("127.0.0.1", broker.port)
    snoop.loop_start()
    server = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="server", protocol=mqtt.MQTTv5)
    server.username_pw_set("ingest", "ingest-pw")
    server.connect("127.0.0.1", broker.port)
    server.loop_start()
    try:
        snoop.subscribe([("streetwatch/v1/van-42/commands", 1), ("streetwatch/v1/van-41/commands", 1)])
        assert subscribed.wait(5)
        server.publish(
            "streetwatch/v1/van-42/commands", b'{"command_id": "x", "type": "t"}', qos=1
        ).wait_for_publish(5)
        server.publish(
            "streetwatch/v1/van-41/commands", b'{"command_id": "y", "type": "t"}', qos=1
        ).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # would another box's command trail behind?
        assert received == ["streetwatch/v1/van-41/commands"]
    finally:
        for client in (snoop, server):
            client.loop_stop()
            client.disconnect()
        broker.stop()

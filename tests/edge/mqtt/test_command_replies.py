"""Every command with a readable id is answered on ``.../commands/reply``: accepted, done or failed."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.mqtt import OutboxSink
from edge.mqtt.commands import Replier
from streetwatch.messages import CommandReply, PublishStatusCommand, SendTelemetryCommand, UpdateModelCommand
from streetwatch.topics import command_replies_topic, commands_topic
from tests.edge.mqtt.support import sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-52"


class ReplyWatcher:
    """A real MQTT client on the reply topic, as the server's ingest of replies would be."""

    def __init__(self, port: int, device_id: str) -> None:
        self.replies: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"replies-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        topic = command_replies_topic(device_id)
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        CommandReply.from_json(message.payload)  # the payload follows the contract, strictly
        with self._lock:
            self.replies.append(json.loads(message.payload))

    def of(self, command_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.replies if r["command_id"] == command_id]

    def wait_final(self, command_id: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.of(command_id)
            if got and got[-1]["state"] in ("done", "failed"):
                return got
            time.sleep(0.05)
        raise AssertionError(f"no final reply to {command_id!r}; got {self.of(command_id)}")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def test_every_command_gets_a_reply_and_refusals_say_why(broker: MosquittoBroker, tmp_path: Path) -> None:
    watcher = ReplyWatcher(broker.port, DEVICE)
    assert watcher.subscribed.wait(5)
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    later: list[Replier] = []
    sink.link.commands.register(
        UpdateModelCommand, lambda _cmd, replier: later.append(replier), own_replies=True
    )
    publish = watcher.client.publish
    topic = commands_topic(DEVICE)
    try:
        deadline = time.monotonic() + 10
        while not sink.link.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        publish(topic, SendTelemetryCommand(command_id="t-1").to_json(), qos=1)
        publish(topic, PublishStatusCommand(command_id="s-1").to_json(), qos=1)
        publish(topic, json.dumps({"command_id": "u-1", "type": "format_disk"}), qos=1)
        publish(topic, json.dumps({"command_id": "v-1", "type": "send_telemetry", "extra": 1}), qos=1)
        publish(topic, json.dumps({"command_id": "e-1", "type": "Not A Type"}), qos=1)
        publish(topic, b"{not json", qos=1)
        update = {
            "command_id": "m-1",
            "type": "update_model",
            "name": "streetwatch-det",
            "version": "1.7.0",
            "url": "http://127.0.0.1:1/m.onnx",
            "sha256": "ab" * 32,
            "size": 10,
            "signature": "c2ln",
        }
        publish(topic, json.dumps(update), qos=1)

        assert [r["state"] for r in watcher.wait_final("t-1")] == ["accepted", "done"]
        assert [r["state"] for r in watcher.wait_final("s-1")] == ["accepted", "done"]
        unknown = watcher.wait_final("u-1")
        assert [r["state"] for r in unknown] == ["failed"]
        assert "unknown command type 'format_disk'" in unknown[0]["reason"]
        assert "update_model" in unknown[0]["reason"]  # it says what the box does know
        invalid = watcher.wait_final("v-1")
        assert [r["state"] for r in invalid] == ["failed"] and "extra" in invalid[0]["reason"]
        bad_type = watcher.wait_final("e-1")
        assert bad_type[0]["type"] == "unknown" and "envelope" in bad_type[0]["reason"]

        # A handler with its own replies: accepted at once, its progress and end come later.
        deadline = time.monotonic() + 10
        while not later and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r["state"] for r in watcher.of("m-1")] == ["accepted"] or not watcher.of("m-1")
        later[0].progress("download", 0.5)
        later[0].failed("the download was refused: HTTP 403", step="download")
        replies = watcher.wait_final("m-1")
        assert [(r["state"], r["step"]) for r in replies] == [
            ("accepted", None),
            ("progress", "download"),
            ("failed", "download"),
        ]
        assert replies[1]["progress"] == 0.5

        # A redelivery is not answered twice.
        publish(topic, SendTelemetryCommand(command_id="t-1").to_json(), qos=1)
        publish(topic, SendTelemetryCommand(command_id="t-2").to_json(), qos=1)
        watcher.wait_final("t-2")
        assert len(watcher.of("t-1")) == 2
        assert all(r["device_id"] == DEVICE for r in watcher.replies)
    finally:
        sink.close()
        watcher.close()

"""Commands from the server: typed ones reach their handler; malformed or unknown ones are ignored."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Literal

import pytest

from edge.mqtt import OutboxSink
from edge.mqtt.commands import CommandDispatcher
from streetwatch.messages import Command, SendTelemetryCommand
from streetwatch.topics import commands_topic
from tests.edge.mqtt.support import Collector, sink_config
from tests.support.mosquitto import MosquittoBroker

DEVICE = "van-51"


class ReloadConfigCommand(Command):
    type: Literal["reload_config"] = "reload_config"
    reason: str


BAD_PAYLOADS = [
    b"\xff\xfe not utf-8",
    b"{not json",
    b"[1, 2]",
    json.dumps({"type": "send_telemetry"}).encode(),  # no command_id
    json.dumps({"command_id": "c-1", "type": "Bad Type!"}).encode(),
    json.dumps({"command_id": "c-2", "type": "format_disk"}).encode(),  # unknown type
    json.dumps({"command_id": "c-3", "type": "reload_config"}).encode(),  # missing field
    json.dumps({"command_id": "c-4", "type": "reload_config", "reason": "x", "extra": 1}).encode(),
    b"x" * 20_000,  # too big
]


def test_dispatcher_ignores_every_bad_payload_and_routes_good_ones(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = CommandDispatcher()
    seen: list[ReloadConfigCommand] = []
    dispatcher.register(ReloadConfigCommand, seen.append)
    for payload in BAD_PAYLOADS:
        assert dispatcher.dispatch(payload) is False
    assert dispatcher.ignored == len(BAD_PAYLOADS)
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == len(BAD_PAYLOADS)

    good = ReloadConfigCommand(command_id="c-9", reason="new zones").to_json()
    assert dispatcher.dispatch(good) is True
    assert dispatcher.dispatch(good) is False  # a QoS 1 redelivery runs nothing twice
    assert [c.reason for c in seen] == ["new zones"]


def test_failing_handler_is_logged_and_the_dispatcher_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = CommandDispatcher()

    def explode(command: ReloadConfigCommand) -> None:
        raise RuntimeError("boom")

    dispatcher.register(ReloadConfigCommand, explode)
    assert dispatcher.dispatch(ReloadConfigCommand(command_id="c-1", reason="r").to_json()) is False
    assert "boom" in caplog.text
    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register(ReloadConfigCommand, explode)
    with pytest.raises(TypeError, match="default 'type'"):
        dispatcher.register(Command, explode)


@pytest.mark.broker
def test_commands_over_the_broker(broker: MosquittoBroker, collector: Collector, tmp_path: Path) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    received = threading.Event()
    sink.link.commands.register(ReloadConfigCommand, lambda cmd: received.set())
    try:
        assert collector.wait_for(lambda c: any(s["state"] == "online" for s in c.status), 10)
        topic = commands_topic(DEVICE)
        for payload in BAD_PAYLOADS:
            collector.client.publish(topic, payload, qos=1)
        collector.client.publish(topic, SendTelemetryCommand(command_id="t-1").to_json(), qos=1)
        collector.client.publish(topic, ReloadConfigCommand(command_id="r-1", reason="test").to_json(), qos=1)
        assert received.wait(10)
        assert collector.wait_for(lambda c: len(c.telemetry) == 1, 10)
        assert sink.link.commands.ignored == len(BAD_PAYLOADS)
        assert sink.link.connected
    finally:
        sink.close()
    report = collector.telemetry[0]
    assert report["device_id"] == DEVICE
    assert report["outbox"]["events"] == 0


@pytest.mark.broker
def test_the_command_thread_outlives_a_deeply_nested_command_and_a_failing_dispatch(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = OutboxSink.open(sink_config(broker.port, tmp_path / "outbox.sqlite3"), device_id=DEVICE)
    received: list[str] = []
    done = threading.Event()
    sink.link.commands.register(
        ReloadConfigCommand, lambda cmd: (received.append(cmd.command_id), done.set())
    )
    dispatch = sink.link.commands.dispatch
    seen: list[bytes] = []

    def dispatch_with_a_bug(payload: bytes) -> bool:  # anything may go wrong while handling a command
        seen.append(payload)
        if b"trips-a-bug" in payload:
            raise RuntimeError("an unexpected failure while handling a command")
        return dispatch(payload)

    sink.link.commands.dispatch = dispatch_with_a_bug  # type: ignore[method-assign]
    depth = 8000  # 16 kB of brackets: just under the size limit, far past what json can recurse into
    nested = b'{"command_id": "n-1", "type": "reload_config", "reason": ' + b"[" * depth + b"]" * depth + b"}"
    try:
        assert collector.wait_for(lambda c: any(s["state"] == "online" for s in c.status), 10)
        topic = commands_topic(DEVICE)
        collector.client.publish(topic, nested, qos=1)
        collector.client.publish(
            topic, ReloadConfigCommand(command_id="trips-a-bug", reason="x").to_json(), qos=1
        )
        collector.client.publish(
            topic, ReloadConfigCommand(command_id="r-2", reason="after").to_json(), qos=1
        )
        assert done.wait(10), "the command thread died: a later command was never handled"
    finally:
        sink.close()
    assert received == ["r-2"]
    assert len(seen) == 3
    assert "nests deeper" in caplog.text and "an unexpected failure" in caplog.text

"""A box that stops sends one last telemetry report, against a real Mosquitto: the server's last word
on it carries the final frames and truck counts, and a broker that is gone does not hold up shutdown."""

from __future__ import annotations

import logging
import signal
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from edge.config import DeviceConfig
from edge.mqtt import MqttLink, OutboxSink
from edge.mqtt.link import CLOSE_PUBLISH_TIMEOUT_S
from edge.pipeline import from_config
from streetwatch.messages import TruckLoadCounts
from streetwatch.topics import parse_topic
from tests.edge.mqtt.support import Collector, make_event, sink_config
from tests.edge.pipeline_fakes import FixedLocator, ListSource, ScriptedDetector, device_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-91"
FRAMES = 37
TRUCKS = TruckLoadCounts(raised=2, unsure=1, silenced=5)


class OrderedCollector(Collector):
    """Also keeps the order in which telemetry and status arrived ("telemetry", "status:offline")."""

    def __post_init__(self) -> None:
        self.arrivals: list[str] = []
        super().__post_init__()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        super()._on_message(client, userdata, message)
        kind: str = parse_topic(message.topic).kind
        if kind == "status" and self.status:
            kind = f"status:{self.status[-1]['state']}"
        with self._lock:
            self.arrivals.append(kind)

    def last_telemetry_before_offline(self) -> bool:
        """The retained status said offline only after the last telemetry report."""
        with self._lock:
            kinds = list(self.arrivals)
        last_report = max((i for i, kind in enumerate(kinds) if kind == "telemetry"), default=None)
        return last_report is not None and "status:offline" in kinds[last_report:]


def open_box(broker: MosquittoBroker, tmp_path: Path) -> tuple[MqttLink, OutboxSink]:
    """A link and its sink as `edge run` opens them, with an interval no periodic report reaches."""
    config = sink_config(broker.port, tmp_path / "outbox.sqlite3", telemetry_interval_s=3600)
    link = MqttLink(config, device_id=DEVICE)
    sink = OutboxSink(config, link)
    deadline = time.monotonic() + 10
    while not link.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert link.connected, "the link did not connect"
    link.telemetry.count_trucks_with(lambda: TRUCKS)
    for _ in range(FRAMES):
        link.telemetry.note_frame()
    return link, sink


def test_closing_sends_the_final_counts_before_saying_offline(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    server = OrderedCollector(broker.port)
    assert server.subscribed.wait(5)
    try:
        link, sink = open_box(broker, tmp_path)
        sink.emit(make_event(DEVICE, 0), None)
        assert sink.wait_until_delivered(10)
        sink.close()  # the runner's order: the sink, then its link
        link.close()
        assert server.wait_for(lambda _: "status:offline" in server.arrivals, 10)
        assert server.telemetry, "no telemetry arrived when the box stopped"
        last = server.telemetry[-1]
        assert sum(t["frames"] for t in server.telemetry) == FRAMES
        assert last["frames"] == FRAMES  # one report, sent at close: the interval is an hour
        assert last["truck_load"] == TRUCKS.model_dump()
        assert last["outbox"]["events"] == 0  # the outbox as the sink left it, delivered
        # Before the retained status says offline (the server reads the box as stopped after it).
        assert server.last_telemetry_before_offline()
    finally:
        server.close()


@pytest.mark.parametrize("away", ["stopped", "frozen"])
def test_closing_with_the_broker_away_returns_soon_with_a_warning(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture, away: str
) -> None:
    link, sink = open_box(broker, tmp_path)
    assert broker.proc is not None
    if away == "stopped":
        broker.stop()  # the box sees the connection drop
    else:
        broker.proc.send_signal(signal.SIGSTOP)  # the socket stays up; nothing answers
    try:
        began = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="edge.mqtt.link"):
            sink.close(drain_timeout_s=0)
            link.close()
        took = time.monotonic() - began
    finally:
        if away == "frozen":
            broker.proc.send_signal(signal.SIGCONT)
    # At most one bounded wait for the telemetry and one for the status (plus the threads' ends).
    assert took < 2 * CLOSE_PUBLISH_TIMEOUT_S + 4, f"closing took {took:.1f} s"
    assert any("last telemetry report (37 frames)" in r.getMessage() for r in caplog.records), caplog.text


def test_a_replay_that_ends_reports_every_frame_it_processed(broker: MosquittoBroker, tmp_path: Path) -> None:
    # The whole stop path of `edge run`: the source ends, the runner closes the sink, then the link.
    server = OrderedCollector(broker.port)
    assert server.subscribed.wait(5)
    try:
        mqtt_config = sink_config(broker.port, tmp_path / "outbox.sqlite3", telemetry_interval_s=3600)
        raw = {**device_config(tmp_path).model_dump(), "sink": mqtt_config.model_dump()}
        config = DeviceConfig.model_validate(raw)
        pipeline = from_config(
            config, detectors=[ScriptedDetector()], locator=FixedLocator(), source=ListSource(count=12)
        )
        stats = pipeline.run()
        assert stats.frames == 12
        assert server.wait_for(lambda _: "status:offline" in server.arrivals, 10)
        assert sum(t["frames"] for t in server.telemetry) == 12, server.telemetry
        assert server.telemetry[-1]["frames"] > 0  # the last report, sent as the link closed
        assert server.last_telemetry_before_offline()
    finally:
        server.close()

"""The shipped broker config (deploy/mosquitto/) starts as written, and a box connects over TLS."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edge.mqtt import MqttSink
from server.settings import MqttSettings
from streetwatch.events import ViolationEvent
from streetwatch.topics import subscription
from tests.broker.clients import BrokerClient
from tests.edge.mqtt.support import event_id, make_event, sink_config
from tests.support.shipped_broker import start_shipped_broker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        shutil.which("openssl") is None, reason="needs the openssl command to make certificates"
    ),
]

DEVICE = "van-61"


def test_box_delivers_over_tls_through_the_shipped_config(tmp_path: Path) -> None:
    broker = start_shipped_broker(tmp_path, {DEVICE: "device-pw"}, {"ingest-1": "ingest-pw"})
    ingest = BrokerClient(broker.port, "ingest-1", "ingest-pw", "ingest-1")
    config = sink_config(
        broker.tls_port,
        tmp_path / "outbox.sqlite3",
        password="device-pw",
        tls={"ca_file": str(broker.etc / "ca.crt")},
    )
    sink = MqttSink(config, device_id=DEVICE)
    try:
        assert ingest.connect()
        group = MqttSettings().share_group
        assert ingest.subscribe([f"$share/{group}/{subscription('events')}"]) == ["Granted QoS 1"]
        sink.emit(make_event(DEVICE, 0), None)
        assert sink.wait_until_delivered(10)
        assert ingest.wait_for(lambda got: len(got) == 1, 5)
        assert ViolationEvent.from_json(ingest.received()[0].payload).event_id == event_id(DEVICE, 0)
    finally:
        sink.close()
        ingest.close()
        broker.stop()

"""More publishes than there are MQTT packet ids (65,535): ids wrap and are reused, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from edge.outbox import Outbox, OutboxLimits, OutboxMessage
from streetwatch.topics import events_topic
from tests.edge.mqtt.support import Collector, event_id, make_event, sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

DEVICE = "van-71"
COUNT = 70_000


def test_packet_id_wrap_around_delivers_every_event(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    path = tmp_path / "outbox.sqlite3"
    backlog = Outbox(path, OutboxLimits(max_bytes=1 << 30, max_age_s=86400))
    template = make_event(DEVICE, 0).to_json()
    first_id = str(event_id(DEVICE, 0)).encode()
    for start in range(0, COUNT, 5000):  # a long dead zone's worth of events, written in batches
        backlog.put(
            [
                OutboxMessage(
                    "event",
                    events_topic(DEVICE),
                    template.replace(first_id, str(event_id(DEVICE, i)).encode()),
                )
                for i in range(start, start + 5000)
            ]
        )
    backlog.close()

    sink = OutboxSink.open(sink_config(broker.port, path), device_id=DEVICE)
    try:
        assert sink.wait_until_delivered(60)
        expected = {str(event_id(DEVICE, i)) for i in range(COUNT)}
        assert collector.wait_for(lambda c: len(set(c.events)) >= COUNT, 30)
    finally:
        sink.close()
    assert set(collector.events) == expected

"""The real ingest worker behind the shipped broker: its own login, its shared group, acks to the
box, while another box tries to join its group and take its client id."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from server.db.migrate import upgrade
from server.db.models import Event
from server.db.session import make_engine, session_factory
from server.ingest.worker import IngestWorker
from server.settings import IngestLimits, MqttSettings, ServerSettings
from streetwatch.topics import acks_topic, events_topic
from tests.broker.clients import BrokerClient, Received
from tests.server.factories import make_event
from tests.support.shipped_broker import start_shipped_broker

pytestmark = pytest.mark.broker

DEVICES = {"van-1": "pw-1", "van-2": "pw-2"}
INGEST = {"ingest-1": "pw-i1"}


def acked_events(messages: list[Received]) -> set[str]:
    return {event_id for m in messages for event_id in json.loads(m.payload).get("events", [])}


def test_the_ingest_worker_stores_every_event_while_another_box_tries_to_steal_them(tmp_path: Path) -> None:
    broker = start_shipped_broker(tmp_path / "broker", DEVICES, INGEST)
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    upgrade(url)
    settings = ServerSettings(
        database_url=url,
        evidence_dir=str(tmp_path / "evidence"),
        mqtt=MqttSettings(port=broker.port, username="ingest-1", password="pw-i1"),
        limits=IngestLimits(batch_wait_s=0.02),
    )
    assert settings.mqtt.client_id == "ingest-1"
    worker = IngestWorker(settings)
    worker.start()
    thief = BrokerClient(broker.port, "van-2", DEVICES["van-2"], "van-2")
    box = BrokerClient(broker.port, "van-1", DEVICES["van-1"], "van-1")
    engine = make_engine(url)
    try:
        assert worker.wait_subscribed(10), "the worker's subscriptions were refused"
        assert thief.connect()
        group = settings.mqtt.share_group
        assert thief.subscribe([f"$share/{group}/streetwatch/v1/+/events"]) == ["Not authorized"]
        assert not BrokerClient(broker.port, "van-2", DEVICES["van-2"], "ingest-1", clean=True).connect()
        assert box.connect()
        assert box.subscribe([acks_topic("van-1")]) == ["Granted QoS 1"]
        events = [make_event(device_id="van-1") for _ in range(40)]
        for event in events:
            assert box.publish(events_topic("van-1"), event.to_json()) in (
                "Success",
                "No matching subscribers",
            )
        sessions = session_factory(engine)
        deadline = time.monotonic() + 30
        stored = 0
        while time.monotonic() < deadline and stored < len(events):
            with sessions() as session:
                stored = session.scalar(select(func.count()).select_from(Event)) or 0
            time.sleep(0.1)
        assert stored == len(events)
        wanted = {str(e.event_id) for e in events}
        assert box.wait_for(lambda got: acked_events(got) >= wanted, 15)
        assert thief.received() == []
    finally:
        worker.stop()
        for client in (thief, box):
            client.close()
        engine.dispose()
        broker.stop()

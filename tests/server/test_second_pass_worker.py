"""Street vending from a patrol, end to end: MQTT through a real Mosquitto, the ingest worker, the
database (SQLite and PostgreSQL). One pass keeps a sighting; a second pass makes it a case; the
worker expires a sighting nobody saw again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Case, CaseState, Event
from server.ingest.worker import IngestWorker
from server.settings import ServerSettings
from streetwatch.events import ViolationEvent, utcnow
from streetwatch.topics import events_topic
from tests.server.factories import make_event
from tests.server.test_ingest_worker import Publisher, settings_for, started, wait_for
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

#: The worker's housekeeping runs on its own clock (the wall clock here): the passes are recent.
T0 = utcnow() - timedelta(hours=2)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def publisher(broker: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(broker.port)
    yield pub
    pub.close()


def vending(**kwargs: object) -> ViolationEvent:
    return make_event(violation_type="street_vending", detector_class="umbrella", **kwargs)  # type: ignore[arg-type]


def cases(sessions: sessionmaker[Session]) -> list[tuple[CaseState, int]]:
    with sessions() as session:
        rows = session.execute(select(Case.state, Case.event_count).order_by(Case.id)).all()
        return [(state, count) for state, count in rows]


def stored(sessions: sessionmaker[Session], count: int) -> bool:
    with sessions() as session:
        return len(session.scalars(select(Event.event_id)).all()) >= count


def test_a_patrol_pass_keeps_a_sighting_and_a_second_pass_opens_one_case_with_both_events(
    migrated_url: str,
    sessions: sessionmaker[Session],
    broker: MosquittoBroker,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    try:
        first = vending(device_id="van-01", at=T0)
        same_pass = vending(device_id="van-01", at=T0 + timedelta(minutes=1), north_m=6)
        for event in (first, same_pass):
            publisher.send(events_topic(event.device_id), event.to_json())
        wait_for(lambda: stored(sessions, 2))
        assert cases(sessions) == [(CaseState.awaiting_recurrence, 2)]

        second_pass = vending(device_id="van-02", at=T0 + timedelta(minutes=40), north_m=-9)
        publisher.send(events_topic(second_pass.device_id), second_pass.to_json())
        wait_for(lambda: stored(sessions, 3))
    finally:
        worker.stop()
    assert cases(sessions) == [(CaseState.new, 3)]


def test_a_fixed_camera_opens_its_case_at_once_through_the_worker(
    migrated_url: str,
    sessions: sessionmaker[Session],
    broker: MosquittoBroker,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    try:
        event = vending(device_id="pole-3", source="fixed")
        publisher.send(events_topic(event.device_id), event.to_json())
        wait_for(lambda: stored(sessions, 1))
    finally:
        worker.stop()
    assert cases(sessions) == [(CaseState.new, 1)]


def test_the_worker_expires_a_sighting_nobody_saw_again(
    migrated_url: str,
    sessions: sessionmaker[Session],
    broker: MosquittoBroker,
    publisher: Publisher,
    tmp_path: Path,
) -> None:
    settings = settings_for(migrated_url, broker, tmp_path)
    worker = started(settings)
    try:
        event = vending(at=T0)
        publisher.send(events_topic(event.device_id), event.to_json())
        wait_for(lambda: stored(sessions, 1))
    finally:
        worker.stop()
    assert cases(sessions) == [(CaseState.awaiting_recurrence, 1)]
    # Eight days on (the rule keeps a sighting 7): the worker's housekeeping at start expires it.
    expiry = timedelta(seconds=ServerSettings().rule("street_vending").second_pass_expiry_s)
    later = IngestWorker(settings, client_id="ingest-later", clock=lambda: T0 + expiry + timedelta(days=1))
    later.start()
    try:
        wait_for(lambda: cases(sessions) == [(CaseState.expired, 1)])
    finally:
        later.stop()

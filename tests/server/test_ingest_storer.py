"""One store() attempt, one explicit outcome: committed, deferred, outage_retry, isolate_one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Event, Rejection
from server.db.session import make_engine, session_factory
from server.ingest import locks
from server.ingest.messages import RejectReason
from server.ingest.storer import BatchStorer, Received, StoreOutcome
from server.settings import ServerSettings
from streetwatch.events import utcnow
from streetwatch.topics import events_topic
from tests.server.factories import make_event

SETTINGS = ServerSettings()


def received(decoded: Any, mid: int = 1) -> Received:
    return Received(events_topic("van-01"), mid, 1, 1, decoded)


def events_in(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def test_a_clean_batch_is_committed(sessions: sessionmaker[Session]) -> None:
    batch = [received(make_event(north_m=100 * i), mid=i) for i in range(3)]
    result = BatchStorer(SETTINGS, sessions, utcnow).store(batch)
    assert result.outcome is StoreOutcome.committed
    assert result.done == batch and result.deferred == []
    assert events_in(sessions) == 3


def test_a_message_that_breaks_the_code_asks_for_isolation_and_stores_nothing(
    sessions: sessionmaker[Session],
) -> None:
    poison = received(object(), mid=2)  # not a decoded message: storing it raises
    batch = [received(make_event(), mid=1), poison, received(make_event(north_m=300), mid=3)]
    storer = BatchStorer(SETTINGS, sessions, utcnow)
    result = storer.store(batch)
    assert result.outcome is StoreOutcome.isolate_one and result.failure is not None
    assert events_in(sessions) == 0
    alone = storer.store([poison.refused(RejectReason.processing_error, str(result.failure))], wait=True)
    assert alone.outcome is StoreOutcome.committed
    with sessions() as session:
        assert session.get(Rejection, "processing_error") is not None


def test_a_database_without_tables_is_an_outage_to_retry(db_url: str) -> None:
    engine = make_engine(db_url)  # not migrated
    try:
        result = BatchStorer(SETTINGS, session_factory(engine), utcnow).store([received(make_event())])
    finally:
        engine.dispose()
    assert result.outcome is StoreOutcome.outage_retry and not result.conflict


def test_messages_whose_locks_another_worker_holds_are_deferred(sessions: sessionmaker[Session]) -> None:
    free, busy = make_event(north_m=0), make_event(north_m=500)
    other = sessions()
    if other.get_bind().dialect.name != "postgresql":
        other.close()
        pytest.skip("advisory locks exist on PostgreSQL only; SQLite lets one writer in at a time")
    try:
        with other.begin():
            locks.acquire(other, locks.event_lock_names(busy, SETTINGS))  # held until this block ends
            batch = [received(free, mid=1), received(busy, mid=2)]
            result = BatchStorer(SETTINGS, sessions, utcnow).store(batch)
    finally:
        other.close()
    assert result.outcome is StoreOutcome.deferred
    assert [m.mid for m in result.done] == [1] and [m.mid for m in result.deferred] == [2]
    assert events_in(sessions) == 1


def test_an_image_the_orphan_quota_refuses_is_committed_but_not_acknowledged(
    sessions: sessionmaker[Session], tmp_path
) -> None:
    """The event naming it is usually on its way: the box must keep the image and send it again."""
    import cv2
    import numpy as np

    from server.evidence_store import EvidenceStore
    from server.ingest.acks import AckKey
    from server.ingest.messages import EvidenceReceived
    from server.settings import IngestLimits
    from streetwatch.topics import evidence_topic

    settings = ServerSettings(evidence_dir=str(tmp_path), limits=IngestLimits(max_orphan_evidence=1))
    store = EvidenceStore(tmp_path)
    batch = []
    for i in range(2):
        ok, data = cv2.imencode(".jpg", np.full((32, 32, 3), 40 * i, dtype=np.uint8))
        assert ok
        stored = store.put(data.tobytes())
        key = AckKey("van-01", "evidence", stored.sha256)
        topic = evidence_topic("van-01", stored.sha256)
        batch.append(Received(topic, i, 1, 1, EvidenceReceived("van-01", stored), key))
    result = BatchStorer(settings, sessions, utcnow).store(batch)
    assert result.outcome is StoreOutcome.committed
    assert [m.ack for m in result.done] == [batch[0].ack, None]
    with sessions() as session:
        quota = session.get(Rejection, "evidence_quota")
        assert quota is not None and quota.count == 1

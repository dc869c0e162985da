"""The sign register in the running ingest worker, over a real Mosquitto (SQLite and PostgreSQL).

A box's signboard event can reach the server before its crop (the broker may reorder across a
reconnect). Near a registered sign the worker holds it without a case, and decides it once the
crop has come: the same sign attaches, a different one opens a "changed signboard" case.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import cv2
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Case, SignSighting
from server.evidence_store import sha256_hex
from server.ingest import worker as worker_module
from server.signs.service import SignIn, add_sign
from streetwatch.events import ViolationEvent, utcnow
from streetwatch.topics import events_topic, evidence_topic
from tests.server.factories import make_event, offset
from tests.server.test_ingest_worker import Publisher, broker, publisher, settings_for, started, wait_for
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker
__all__ = ["broker", "publisher"]  # fixtures used by name

CROPS = sorted((Path(__file__).parent / "crops").glob("*.jpg"))


def _crop(index: int, quality: int) -> bytes:
    image = cv2.imread(str(CROPS[index]))
    assert image is not None
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _sighting(crop: bytes, east_m: float) -> ViolationEvent:
    at = utcnow() - timedelta(seconds=5)
    return make_event(
        device_id="van-01",
        violation_type="illegal_signboard",
        at=at,
        east_m=east_m,
        evidence={
            "frame_sha256": sha256_hex(crop),
            "frame_bytes": len(crop),
            "crop_sha256": sha256_hex(crop),
            "crop_bytes": len(crop),
            "captured_at": at.isoformat(),
        },
    )


def _outcomes(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return list(session.scalars(select(SignSighting.outcome).order_by(SignSighting.id)))


def test_events_before_their_crops_are_decided_by_the_worker_when_the_crops_come(
    migrated_url: str,
    sessions: sessionmaker[Session],
    broker: MosquittoBroker,
    publisher: Publisher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(worker_module, "SIGNS_SETTLE_EVERY_S", 0.5)
    with sessions.begin() as session:
        for sign, east in ((0, 0.0), (1, 40.0)):
            lat, lon = offset(0.0, east)
            add_sign(session, SignIn(lat=lat, lon=lon), "test", utcnow(), crops=[_crop(sign, 90)])
    same = _crop(0, 70)  # the sign registered at 0 m, seen again
    other = _crop(5, 70)  # a different sign where sign 1 was registered
    worker = started(settings_for(migrated_url, broker, tmp_path))
    try:
        for crop, east in ((same, 1.0), (other, 41.0)):
            event = _sighting(crop, east)
            publisher.send(events_topic(event.device_id), event.to_json())
        wait_for(lambda: _outcomes(sessions) == ["pending", "pending"])
        with sessions() as session:
            assert session.scalars(select(Case)).all() == []
        time.sleep(1.0)  # settling passes while the crops are missing change nothing
        assert _outcomes(sessions) == ["pending", "pending"]
        for crop in (same, other):
            publisher.send(evidence_topic("van-01", sha256_hex(crop)), crop)
        wait_for(lambda: sorted(_outcomes(sessions)) == ["attached", "changed"])
    finally:
        worker.stop()
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.title.startswith("Changed signboard") and case.event_count == 1

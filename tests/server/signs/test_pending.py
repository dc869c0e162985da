"""Sightings whose crop is not there yet: held without a case, decided when it comes or when it is late."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import cv2
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Case, Event, Sign, SignSighting
from server.evidence_store import EvidenceStore, sha256_hex
from server.ingest.process import ingest_event
from server.settings import ServerSettings
from server.signs.service import SignIn, add_sign
from server.signs.settle import settle_pending
from streetwatch.events import ViolationEvent
from tests.server.factories import T0, make_event, offset

CROPS = sorted((Path(__file__).parent / "crops").glob("*.jpg"))


def _settings(tmp_path: Path) -> ServerSettings:
    return ServerSettings(evidence_dir=str(tmp_path / "evidence"))


def _crop(index: int, quality: int = 80) -> bytes:
    image = cv2.imread(str(CROPS[index]))
    assert image is not None
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return data.tobytes()


def _sighting(crop: bytes, track: uuid.UUID, seconds: int, east_m: float = 1.0) -> ViolationEvent:
    return make_event(
        violation_type="illegal_signboard",
        track_id=track,
        at=T0 + timedelta(seconds=seconds),
        east_m=east_m,
        evidence={
            "frame_sha256": sha256_hex(crop),
            "frame_bytes": len(crop),
            "crop_sha256": sha256_hex(crop),
            "crop_bytes": len(crop),
            "captured_at": (T0 + timedelta(seconds=seconds)).isoformat(),
        },
    )


def _register(sessions: sessionmaker[Session], index: int | None) -> int:
    lat, lon = offset()
    with sessions.begin() as session:
        crops = [_crop(index, quality=90)] if index is not None else []
        return add_sign(session, SignIn(lat=lat, lon=lon, permit_id="P-1"), "test", T0, crops=crops).id


def _ingest(
    sessions: sessionmaker[Session], settings: ServerSettings, event: ViolationEvent, seconds: int
) -> None:
    with sessions.begin() as session:
        ingest_event(session, event, T0 + timedelta(seconds=seconds), settings=settings)


def _outcomes(sessions: sessionmaker[Session]) -> list[tuple[str, int | None, int | None]]:
    with sessions() as session:
        rows = session.scalars(select(SignSighting).order_by(SignSighting.id)).all()
        return [(s.outcome, s.sign_id, s.case_id) for s in rows]


def test_a_crop_arriving_later_decides_the_held_sighting(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sign_id = _register(sessions, 0)
    crop = _crop(0)  # the registered sign, seen again
    _ingest(sessions, settings, _sighting(crop, uuid.uuid4(), 0), 1)
    assert _outcomes(sessions) == [("pending", sign_id, None)]
    with sessions.begin() as session:
        assert settle_pending(session, settings, T0 + timedelta(seconds=5)) == 0  # still waiting
    EvidenceStore(settings.evidence_dir).put(crop)  # the crop arrives
    with sessions.begin() as session:
        assert settle_pending(session, settings, T0 + timedelta(seconds=10)) == 1
    assert _outcomes(sessions) == [("attached", sign_id, None)]
    with sessions() as session:
        assert session.scalars(select(Case)).all() == []
        assert session.get(Sign, sign_id).sighting_count == 1  # type: ignore[union-attr]


def test_a_later_event_of_the_track_with_its_crop_decides_for_the_whole_track(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sign_id = _register(sessions, 0)
    track = uuid.uuid4()
    first = _sighting(_crop(5, quality=70), track, 0)  # another sign now; its crop is late
    _ingest(sessions, settings, first, 1)
    second_crop = _crop(5, quality=85)
    EvidenceStore(settings.evidence_dir).put(second_crop)
    _ingest(sessions, settings, _sighting(second_crop, track, 3), 4)
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.title.startswith("Changed signboard") and f"register entry {sign_id}" in case.title
        assert case.event_count == 2
        assert {e.case_id for e in session.scalars(select(Event))} == {case.id}
    assert _outcomes(sessions) == [("changed", sign_id, case.id), ("changed", sign_id, case.id)]


def test_a_crop_that_never_comes_opens_an_unverified_case_after_the_wait(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sign_id = _register(sessions, 0)
    _ingest(sessions, settings, _sighting(_crop(0), uuid.uuid4(), 0), 1)
    with sessions.begin() as session:
        assert settle_pending(session, settings, T0 + timedelta(seconds=settings.signs.pending_s - 5)) == 0
    with sessions.begin() as session:
        assert settle_pending(session, settings, T0 + timedelta(seconds=settings.signs.pending_s + 5)) == 1
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.title.startswith("Signboard at a registered place near ")
        assert case.title.endswith(f"appearance not checked (register entry {sign_id})")
        assert session.scalars(select(Event.case_id)).one() == case.id
    assert _outcomes(sessions) == [("unverified", sign_id, case.id)]


def test_a_permit_without_photo_learns_its_look_from_the_first_sighting(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    sign_id = _register(sessions, None)
    store = EvidenceStore(settings.evidence_dir)
    first, other = _crop(2), _crop(6)
    store.put(first)
    store.put(other)
    _ingest(sessions, settings, _sighting(first, uuid.uuid4(), 0), 1)
    with sessions() as session:
        assert session.get(Sign, sign_id).fingerprint is not None  # type: ignore[union-attr]
    _ingest(sessions, settings, _sighting(other, uuid.uuid4(), 60), 61)  # later, another sign there
    assert [o for o, _, _ in _outcomes(sessions)] == ["attached", "changed"]


def test_signboards_far_from_any_registered_sign_open_new_cases_without_waiting(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    _register(sessions, 0)
    _ingest(sessions, settings, _sighting(_crop(0), uuid.uuid4(), 0, east_m=40.0), 1)  # no crop on file
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.title.startswith("New signboard")
    assert _outcomes(sessions) == [("new", None, case.id)]


def test_with_the_register_off_every_signboard_is_a_case_as_before(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = ServerSettings(evidence_dir=str(tmp_path / "evidence"), signs={"enabled": False})
    _register(sessions, 0)
    crop = _crop(0)
    EvidenceStore(settings.evidence_dir).put(crop)
    _ingest(sessions, settings, _sighting(crop, uuid.uuid4(), 0), 1)
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert not case.title.startswith(("New", "Changed"))
    assert _outcomes(sessions) == []

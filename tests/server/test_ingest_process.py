"""Ingest without MQTT: idempotent storage and case merging, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.cases.merge import merge_case
from server.cases.service import transition
from server.db.models import Case, Device, Event
from server.ingest.process import IngestBatch, ingest_event
from server.matching.geo import haversine_m
from server.matching.matcher import MatchAction
from server.settings import ServerSettings
from streetwatch.events import ObjectPosition, ViolationEvent
from tests.server.factories import T0, make_event, offset

SETTINGS = ServerSettings()


def ingest(sessions: sessionmaker[Session], event, now=None):
    with sessions.begin() as session:
        return ingest_event(session, event, now or event.observed_at, SETTINGS)


def count(sessions: sessionmaker[Session], model) -> int:
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_duplicate_deliveries_store_one_event(sessions: sessionmaker[Session]) -> None:
    event = make_event()
    first = ingest(sessions, event)
    again = [ingest(sessions, event) for _ in range(3)]
    assert first.stored and first.action is MatchAction.new
    assert [o.stored for o in again] == [False, False, False]
    assert count(sessions, Event) == 1
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.event_count == 1
        stored = session.get(Event, event.event_id)
        assert stored is not None and stored.case_id == case.id
        assert stored.raw["event_id"] == str(event.event_id)
        device = session.get(Device, "van-01")
        assert device is not None and device.event_count == 1


def test_duplicates_inside_one_batch_store_one_event(sessions: sessionmaker[Session]) -> None:
    event = make_event()
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, T0)
        batch.lock([event, event])
        batch.preload([event, event])
        outcomes = [batch.add_event(event), batch.add_event(event)]
        batch.finish()
    assert [o.stored for o in outcomes] == [True, False]
    assert count(sessions, Event) == 1


def test_two_devices_at_the_same_spot_make_one_case(sessions: sessionmaker[Session]) -> None:
    a = ingest(sessions, make_event(device_id="van-01"))
    b = ingest(sessions, make_event(device_id="van-02", north_m=12, at=T0 + timedelta(minutes=20)))
    c = ingest(sessions, make_event(device_id="van-02", north_m=-5, at=T0 + timedelta(minutes=40)))
    assert a.case_id == b.case_id == c.case_id
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert (case.event_count, case.device_count) == (3, 2)
        assert case.last_event_at == T0 + timedelta(minutes=40)


def test_beyond_the_radius_makes_two_cases(sessions: sessionmaker[Session]) -> None:
    a = ingest(sessions, make_event())
    b = ingest(sessions, make_event(device_id="van-02", north_m=21))
    assert a.case_id != b.case_id
    assert count(sessions, Case) == 2


def placed(north_m: float, pile_north_m: float, **kw: Any) -> ViolationEvent:
    """A pile seen from a van at ``north_m``; the box placed the pile itself at ``pile_north_m``."""
    lat, lon = offset(pile_north_m)
    event = make_event(north_m=north_m, **kw)
    place = ObjectPosition(lat=lat, lon=lon, accuracy_m=5.0, along_m=pile_north_m - north_m)
    return event.model_copy(update={"object_position": place})


def test_events_are_matched_and_stored_at_their_objects_place(sessions: sessionmaker[Session]) -> None:
    """Two passes the opposite way: the van's fixes are 50 m apart, the pile's places 3 m."""
    north = placed(-25, 0.0)
    south = placed(25, 3.0, device_id="van-02", at=T0 + timedelta(minutes=30))
    assert ingest(sessions, north).case_id == ingest(sessions, south).case_id
    with sessions() as session:
        case = session.scalars(select(Case)).one()
        assert case.lat is not None and case.lon is not None
        assert haversine_m(case.lat, case.lon, *offset(0.0)) < 0.1  # the first pass's pile
        stored = session.get(Event, north.event_id)
        assert stored is not None and (stored.lat, stored.lon, stored.accuracy_m) == (*offset(0.0), 5.0)
        camera = stored.raw["position"]
        assert haversine_m(camera["lat"], camera["lon"], *offset(-25)) < 0.1  # the camera's, as sent
    unplaced = [make_event(north_m=-25), make_event(north_m=25, device_id="van-02")]
    assert len({ingest(sessions, e).case_id for e in unplaced}) == 2  # what the fixes alone give


def test_same_spot_different_type_makes_two_cases(sessions: sessionmaker[Session]) -> None:
    a = ingest(sessions, make_event(violation_type="garbage_overflow"))
    b = ingest(sessions, make_event(violation_type="illegal_signboard"))
    assert a.case_id != b.case_id


def test_moving_trucks_match_by_device_and_track(sessions: sessionmaker[Session]) -> None:
    track = uuid.uuid4()
    first = ingest(sessions, make_event(violation_type="unsealed_truck", track_id=track))
    followed = ingest(
        sessions,
        make_event(
            violation_type="unsealed_truck", track_id=track, north_m=300, at=T0 + timedelta(seconds=40)
        ),
    )
    other_truck = ingest(sessions, make_event(violation_type="unsealed_truck", at=T0 + timedelta(seconds=50)))
    much_later = ingest(
        sessions, make_event(violation_type="unsealed_truck", track_id=track, at=T0 + timedelta(hours=2))
    )
    assert followed.case_id == first.case_id
    assert other_truck.case_id != first.case_id
    assert much_later.case_id not in (first.case_id, other_truck.case_id)


def test_recurrence_of_a_recently_closed_case(sessions: sessionmaker[Session]) -> None:
    first = ingest(sessions, make_event())
    assert first.case_id is not None
    closed_at = T0 + timedelta(hours=3)
    with sessions.begin() as session:
        transition(session, first.case_id, "resolved", "alice", "emptied", now=closed_at)
        transition(session, first.case_id, "closed", "alice", "done", now=closed_at)
    back = ingest(sessions, make_event(device_id="van-05", north_m=4, at=T0 + timedelta(days=2)))
    assert back.action is MatchAction.recurrence and back.case_id != first.case_id
    window = timedelta(seconds=SETTINGS.rule("garbage_overflow").recurrence_window_s)
    unrelated = ingest(sessions, make_event(device_id="van-05", north_m=-150, at=closed_at + window / 2))
    with sessions() as session:
        new_case = session.get(Case, back.case_id)
        assert new_case is not None and new_case.recurrence_of == first.case_id
        other = session.get(Case, unrelated.case_id)
        assert other is not None and other.recurrence_of is None


def test_a_recurrence_beside_a_merged_duplicate_names_the_case_it_was_merged_into(
    sessions: sessionmaker[Session],
) -> None:
    # Two sightings 30 m apart (beyond the radius: two cases) that a reviewer says are one pile.
    first = ingest(sessions, make_event())
    twin = ingest(sessions, make_event(device_id="van-02", north_m=30, at=T0 + timedelta(minutes=5)))
    assert first.case_id is not None and twin.case_id is not None and twin.case_id != first.case_id
    merged_at = T0 + timedelta(hours=1)
    with sessions.begin() as session:
        merge_case(session, twin.case_id, first.case_id, "alice", "same pile", now=merged_at)
        transition(session, first.case_id, "resolved", "alice", "cleared", now=merged_at)
    # The pile comes back where the duplicate saw it: near the duplicate only.
    back = ingest(sessions, make_event(device_id="van-05", north_m=31, at=T0 + timedelta(days=1)))
    assert back.action is MatchAction.recurrence
    with sessions() as session:
        new_case = session.get(Case, back.case_id)
        assert new_case is not None and new_case.recurrence_of == first.case_id


def test_recurrence_window_is_respected(sessions: sessionmaker[Session]) -> None:
    first = ingest(sessions, make_event())
    assert first.case_id is not None
    with sessions.begin() as session:
        transition(session, first.case_id, "rejected", "alice", "not a violation", now=T0)
        transition(session, first.case_id, "closed", "alice", "done", now=T0)
    window = timedelta(seconds=SETTINGS.rule("garbage_overflow").recurrence_window_s)
    late = ingest(sessions, make_event(at=T0 + window + timedelta(hours=1)))
    assert late.action is MatchAction.new
    with sessions() as session:
        case = session.get(Case, late.case_id)
        assert case is not None and case.recurrence_of is None


def test_a_track_that_moved_stays_in_its_case(sessions: sessionmaker[Session]) -> None:
    track = uuid.uuid4()
    a = ingest(sessions, make_event(track_id=track))
    b = ingest(sessions, make_event(track_id=track, north_m=45, at=T0 + timedelta(seconds=5), sequence=1))
    assert a.case_id == b.case_id


def test_many_cases_in_one_batch_keep_their_counts(sessions: sessionmaker[Session]) -> None:
    events = [
        make_event(device_id=f"van-{i % 3}", north_m=100 * (i % 5), at=T0 + timedelta(seconds=i))
        for i in range(30)
    ]
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, T0 + timedelta(minutes=1))
        batch.lock(events)
        batch.preload(events)
        outcomes = [batch.add_event(e) for e in events]
        batch.finish()
    assert len({o.case_id for o in outcomes}) == 5
    with sessions() as session:
        cases = session.scalars(select(Case)).all()
        assert sorted(c.event_count for c in cases) == [6] * 5
        assert sorted(c.device_count for c in cases) == [3] * 5
        devices = {d.device_id: d.event_count for d in session.scalars(select(Device))}
    assert devices == {"van-0": 10, "van-1": 10, "van-2": 10}


def _telemetry(device: str, north_m: float, at):
    from streetwatch.messages import TelemetryMessage
    from tests.server.factories import offset

    lat, lon = offset(north_m)
    return TelemetryMessage.model_validate(
        {
            "device_id": device,
            "at": at,
            "period_s": 10,
            "uptime_s": 100,
            "frames": 100,
            "fps": 10,
            "coverage": [{"lat": lat, "lon": lon, "at": at}],
            "outbox": {"events": 0, "evidence": 0, "bytes": 0},
        }
    )


def test_events_and_telemetry_of_one_pass_in_one_batch(sessions: sessionmaker[Session]) -> None:
    """The van that sees the bin and reports its track in the same batch keeps the case open."""
    from server.db.models import CaseTransition

    first = ingest(sessions, make_event())
    now = T0 + timedelta(hours=2)
    seen = make_event(device_id="van-07", north_m=2, at=now - timedelta(seconds=10))
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, now)
        batch.preload([seen])
        batch.add_event(seen)
        marked = batch.add_telemetry(_telemetry("van-07", 3, now - timedelta(seconds=5)))
        batch.finish()
    assert marked == []
    # Another van passes without seeing it, then a third sees it, all in one batch.
    later = now + timedelta(hours=1)
    again = make_event(device_id="van-09", north_m=-2, at=later + timedelta(seconds=30))
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, later + timedelta(minutes=1))
        marked = batch.add_telemetry(_telemetry("van-08", 0, later))
        batch.preload([again])
        outcome = batch.add_event(again)
        batch.finish()
    assert marked == [first.case_id] and outcome.case_id == first.case_id
    with sessions() as session:
        case = session.get(Case, first.case_id)
        assert case is not None
        assert (case.state, case.event_count, case.device_count) == ("new", 3, 3)
        steps = session.scalars(
            select(CaseTransition.to_state)
            .where(CaseTransition.case_id == case.id)
            .order_by(CaseTransition.id)
        ).all()
    assert steps == ["new", "possibly_resolved", "new"]


def test_old_telemetry_is_pruned(sessions: sessionmaker[Session]) -> None:
    from server.db.models import TelemetryPoint
    from server.ingest.process import prune_telemetry

    retention = timedelta(hours=SETTINGS.limits.telemetry_retention_h)
    now = T0 + retention + timedelta(hours=1)
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, now)
        batch.add_telemetry(_telemetry("van-01", 500, T0))  # older than the retention
        batch.add_telemetry(_telemetry("van-01", 500, now - timedelta(minutes=1)))
        batch.finish()
    with sessions.begin() as session:
        assert prune_telemetry(session, SETTINGS, now) == 1
    with sessions() as session:
        kept = session.scalars(select(TelemetryPoint)).all()
    assert [p.at for p in kept] == [now - timedelta(minutes=1)]


def test_a_long_telemetry_track_is_thinned_to_the_limit(sessions: sessionmaker[Session]) -> None:
    from server.db.models import TelemetryPoint
    from streetwatch.messages import TelemetryMessage

    limit = SETTINGS.limits.max_telemetry_points
    base = _telemetry("van-01", 0, T0).model_dump()
    base["coverage"] = [
        {"lat": 31.0 + i * 1e-5, "lon": 121.0, "at": T0 + timedelta(seconds=i)} for i in range(limit * 3)
    ]
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, T0 + timedelta(hours=1))
        batch.add_telemetry(TelemetryMessage.model_validate(base))
        batch.finish()
    with sessions() as session:
        points = session.scalars(select(TelemetryPoint).order_by(TelemetryPoint.at)).all()
        device = session.get(Device, "van-01")
    assert len(points) == limit
    assert points[-1].at == T0 + timedelta(seconds=limit * 3 - 1)  # the newest point is kept
    assert device is not None and device.last_position_at == points[-1].at


def test_a_shop_fronts_signs_are_one_case_each_on_every_pass(sessions: sessionmaker[Session]) -> None:
    """Three signs side by side in the same frames of one box: three cases. A fourth track boxed
    inside the first sign (the detector's part of it) is that sign. On the next pass the box sees
    the three again under new tracks, one batch each (what the database holds decides): each joins
    a case of its own, none swallows another. Two piles in one frame stay one case."""
    signs = SETTINGS.model_copy(update={"signs": SETTINGS.signs.model_copy(update={"enabled": False})})
    boxes = [(10.0, 20.0, 110.0, 120.0), (200.0, 20.0, 300.0, 120.0), (400.0, 20.0, 500.0, 120.0)]

    def sign(track: uuid.UUID, at: Any, box: tuple[float, ...], lifecycle: str = "new") -> ViolationEvent:
        return make_event(
            violation_type="illegal_signboard",
            track_id=track,
            at=at,
            north_m=2.0,
            box=box,
            lifecycle=lifecycle,
        )

    first_pass = [uuid.uuid4() for _ in range(3)]
    part = uuid.uuid4()
    events = [sign(t, T0, b) for t, b in zip(first_pass, boxes, strict=True)]
    events += [sign(t, T0 + timedelta(seconds=1), b, "end") for t, b in zip(first_pass, boxes, strict=True)]
    events.append(sign(part, T0, (20.0, 60.0, 100.0, 115.0)))  # the lower band of the first sign
    with sessions.begin() as session:
        batch = IngestBatch(session, signs, T0 + timedelta(seconds=2))
        batch.lock(events)
        batch.preload(events)
        for e in events:
            batch.add_event(e)
        batch.finish()
    with sessions() as session:
        case_of = {e.track_id: e.case_id for e in session.scalars(select(Event))}
    opened = [case_of[t] for t in first_pass]
    assert len(set(opened)) == 3 and case_of[part] == opened[0]
    later = T0 + timedelta(hours=3)
    again = []
    for box in boxes:
        with sessions.begin() as session:
            again.append(ingest_event(session, sign(uuid.uuid4(), later, box), later, signs).case_id)
    assert sorted(again) == sorted(opened)
    with sessions() as session:
        counts = session.scalars(select(Case.event_count).where(Case.violation_type == "illegal_signboard"))
        assert sorted(counts) == [3, 3, 4]

    # A second camera of the same box sees one of the signs at the same moment, elsewhere in its own
    # frame: the box's tracks are per camera, so nothing says it is another sign; it joins by place.
    rear = make_event(
        violation_type="illegal_signboard",
        at=later,
        north_m=2.0,
        box=(520.0, 20.0, 630.0, 120.0),
        camera_id="cam1",
    )
    with sessions.begin() as session:
        assert ingest_event(session, rear, later, signs).case_id in opened

    piles = [make_event(at=T0, north_m=500.0, track_id=uuid.uuid4()) for _ in range(2)]
    assert ingest(sessions, piles[0]).case_id == ingest(sessions, piles[1]).case_id

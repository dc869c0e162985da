"""Street vending from a patrol waits for a second pass: matching and ingest on SQLite and PostgreSQL.

A patrol's first sighting is stored as a case in ``awaiting_recurrence``; another pass at
least ``second_pass_gap_s`` later (same box or another, not the same track) makes it ``new``;
a fixed camera opens its case at once; a sighting nobody sees again expires.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.cases.second_pass import expire_sightings
from server.db.models import Case, CaseState, CaseTransition, Event
from server.ingest.process import IngestBatch, ingest_event
from server.matching.matcher import CaseCandidate, MatchAction, match_event, needs_second_pass
from server.settings import MatchingRule, ServerSettings, load_settings
from streetwatch.errors import ConfigError
from streetwatch.events import ObjectPosition, ViolationEvent, ViolationType
from tests.server.factories import T0, make_event, offset

SETTINGS = ServerSettings()
VENDING = SETTINGS.rule("street_vending")
GAP = timedelta(seconds=VENDING.second_pass_gap_s)
EXPIRY = timedelta(seconds=VENDING.second_pass_expiry_s)


def vending(at: datetime = T0, *, north_m: float = 0.0, **kwargs: object) -> ViolationEvent:
    return make_event(violation_type="street_vending", at=at, north_m=north_m, **kwargs)  # type: ignore[arg-type]


def ingest(
    sessions: sessionmaker[Session], *events: ViolationEvent, now: datetime | None = None
) -> list[int]:
    """Each event in its own transaction, as the worker's batches would; the case id of each."""
    ids = []
    for event in events:
        with sessions.begin() as session:
            outcome = ingest_event(session, event, now or event.observed_at + timedelta(seconds=5), SETTINGS)
        assert outcome.case_id is not None
        ids.append(outcome.case_id)
    return ids


def case_of(sessions: sessionmaker[Session], case_id: int) -> Case:
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        session.expunge(case)
        return case


def history(sessions: sessionmaker[Session], case_id: int) -> list[tuple[CaseState | None, CaseState, str]]:
    with sessions() as session:
        rows = session.scalars(
            select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id)
        )
        return [(r.from_state, r.to_state, r.actor) for r in rows]


def events_of(sessions: sessionmaker[Session], case_id: int) -> int:
    with sessions() as session:
        return len(session.scalars(select(Event.event_id).where(Event.case_id == case_id)).all())


# -- the pure rule ---------------------------------------------------------------------------


def test_only_a_patrols_position_waits_for_a_second_pass() -> None:
    assert needs_second_pass(vending(source="gpx"), VENDING)
    assert needs_second_pass(vending(source="nmea"), VENDING)
    assert not needs_second_pass(vending(source="fixed"), VENDING)  # dwell on the box covers it
    assert not needs_second_pass(vending(position=False), VENDING)  # cannot be placed for a second pass
    garbage = make_event(violation_type="garbage_overflow")
    assert not needs_second_pass(garbage, SETTINGS.rule("garbage_overflow"))  # its rule asks for none


def test_an_awaiting_sighting_takes_a_pass_days_later_until_it_expires() -> None:
    awaiting = CaseCandidate(
        case_id=7,
        violation_type=ViolationType.street_vending,
        state=CaseState.awaiting_recurrence,
        lat=vending().position.lat,  # type: ignore[union-attr]
        lon=vending().position.lon,  # type: ignore[union-attr]
        last_event_at=T0,
        finished_at=None,
        device_id="van-01",
        track_id=uuid.uuid4(),
        first_event_at=T0,
    )
    later = T0 + timedelta(days=3)  # far beyond the 4 h join window
    decision = match_event(vending(later, device_id="van-02", north_m=10), [awaiting], VENDING, later)
    assert (decision.action, decision.case_id, decision.confirms) == (MatchAction.join, 7, True)
    same_pass = T0 + timedelta(minutes=1)
    decision = match_event(vending(same_pass, north_m=5), [awaiting], VENDING, same_pass)
    assert (decision.action, decision.confirms) == (MatchAction.join, False)
    too_late = T0 + EXPIRY + timedelta(minutes=1)
    decision = match_event(vending(too_late), [awaiting], VENDING, too_late)
    assert (decision.action, decision.awaits_second_pass) == (MatchAction.new, True)


def test_a_rule_cannot_wait_longer_for_the_pass_than_it_keeps_the_sighting() -> None:
    with pytest.raises(ValueError, match="must be below second_pass_expiry_s"):
        MatchingRule(
            radius_m=30,
            join_window_s=600,
            recurrence_window_s=0,
            sla_hours=4,
            priority=3,
            second_pass_gap_s=3600,
            second_pass_expiry_s=1800,
        )
    with pytest.raises(ValueError, match="moving rule"):
        MatchingRule(
            radius_m=30,
            join_window_s=600,
            recurrence_window_s=0,
            moving=True,
            sla_hours=4,
            priority=3,
            second_pass_gap_s=600,
        )


def test_the_second_pass_is_set_per_type_and_can_be_turned_off(tmp_path: Path) -> None:
    off = load_settings(None, env={"STREETWATCH_MATCHING__STREET_VENDING__SECOND_PASS_GAP_S": "0"})
    assert not needs_second_pass(vending(), off.rule("street_vending"))
    assert off.rule("street_vending").radius_m == VENDING.radius_m  # the rule's other fields stay
    config = tmp_path / "server.yaml"
    config.write_text(
        "matching:\n  street_vending:\n    second_pass_gap_s: 7200\n    second_pass_expiry_s: 3600\n"
    )
    with pytest.raises(ConfigError, match="second_pass_gap_s"):
        load_settings(config, env={})


# -- through the ingest, on both databases ---------------------------------------------------


def test_a_patrol_passing_once_opens_no_case_and_again_40_min_later_one_with_both_events(
    sessions: sessionmaker[Session],
) -> None:
    (first,) = ingest(sessions, vending(T0))
    case = case_of(sessions, first)
    assert case.state is CaseState.awaiting_recurrence
    assert history(sessions, first) == [(None, CaseState.awaiting_recurrence, "system:ingest")]

    second_at = T0 + timedelta(minutes=40)
    now = second_at + timedelta(seconds=5)
    (second,) = ingest(sessions, vending(second_at, device_id="van-02", north_m=12), now=now)
    assert second == first
    case = case_of(sessions, first)
    assert case.state is CaseState.new
    assert (case.event_count, case.device_count) == (2, 2)
    assert events_of(sessions, first) == 2
    assert case.first_event_at == T0  # the first sighting is kept
    assert case.opened_at == now  # dispatchers got it now: its age and SLA start here
    assert case.sla_due_at == second_at + timedelta(hours=VENDING.sla_hours)
    assert history(sessions, first) == [
        (None, CaseState.awaiting_recurrence, "system:ingest"),
        (CaseState.awaiting_recurrence, CaseState.new, "system:ingest"),
    ]
    with sessions() as session:
        assert session.scalar(select(Case.id).where(Case.id != first)) is None  # one case, no other


def test_a_stall_passed_the_other_way_recurs_by_its_place_not_by_the_vans(
    sessions: sessionmaker[Session],
) -> None:
    """Each pass confirms the stall 30 m before it: the fixes are 60 m apart, the stall's places 4 m."""

    def seen(north_m: float, stall_north_m: float, at: datetime) -> ViolationEvent:
        lat, lon = offset(stall_north_m, east_m=5.0)
        place = ObjectPosition(lat=lat, lon=lon, accuracy_m=6.0, along_m=abs(stall_north_m - north_m))
        return vending(at, north_m=north_m).model_copy(update={"object_position": place})

    later = T0 + timedelta(minutes=40)
    first, second = ingest(sessions, seen(-30, 0.0, T0), seen(30, 4.0, later))
    assert second == first
    assert case_of(sessions, first).state is CaseState.new
    # What the vans' fixes alone say: two sightings 60 m apart, each still waiting for its pass.
    unplaced = ingest(sessions, vending(T0, north_m=-230), vending(later, north_m=-170))
    assert unplaced[0] != unplaced[1]
    assert {case_of(sessions, i).state for i in unplaced} == {CaseState.awaiting_recurrence}


def test_two_sightings_of_one_pass_still_wait(sessions: sessionmaker[Session]) -> None:
    ids = ingest(sessions, vending(T0), vending(T0 + timedelta(minutes=1), north_m=8))
    assert ids[0] == ids[1]
    case = case_of(sessions, ids[0])
    assert (case.state, case.event_count) == (CaseState.awaiting_recurrence, 2)


def test_the_same_track_much_later_is_still_the_same_pass(sessions: sessionmaker[Session]) -> None:
    track = uuid.uuid4()
    ids = ingest(
        sessions,
        vending(T0, track_id=track),
        vending(T0 + GAP + timedelta(minutes=10), track_id=track, lifecycle="update", sequence=1),
    )
    assert ids[0] == ids[1]
    assert case_of(sessions, ids[0]).state is CaseState.awaiting_recurrence


def test_a_sighting_not_seen_again_in_time_expires(sessions: sessionmaker[Session]) -> None:
    (old,) = ingest(sessions, vending(T0))
    late_at = T0 + EXPIRY + timedelta(hours=1)
    (fresh,) = ingest(sessions, vending(late_at, device_id="van-02"))
    assert fresh != old  # too old to take the pass: the new sighting waits on its own
    assert case_of(sessions, fresh).state is CaseState.awaiting_recurrence

    with sessions.begin() as session:
        assert expire_sightings(session, SETTINGS, T0 + EXPIRY - timedelta(minutes=1)) == []
    with sessions.begin() as session:
        assert expire_sightings(session, SETTINGS, late_at) == [old]
    assert case_of(sessions, old).state is CaseState.expired
    assert case_of(sessions, fresh).state is CaseState.awaiting_recurrence
    assert history(sessions, old)[-1] == (
        CaseState.awaiting_recurrence,
        CaseState.expired,
        "system:second-pass",
    )
    # An expired sighting takes no further pass either.
    (third,) = ingest(sessions, vending(late_at + GAP, device_id="van-03"))
    assert third == fresh and case_of(sessions, fresh).state is CaseState.new


def test_a_fixed_camera_opens_its_case_at_once_and_confirms_a_waiting_sighting(
    sessions: sessionmaker[Session],
) -> None:
    (fixed,) = ingest(sessions, vending(T0, device_id="pole-3", source="fixed"))
    assert case_of(sessions, fixed).state is CaseState.new
    assert history(sessions, fixed) == [(None, CaseState.new, "system:ingest")]

    (patrol,) = ingest(sessions, vending(T0, north_m=500))
    (confirmed,) = ingest(
        sessions, vending(T0 + timedelta(minutes=2), device_id="pole-9", north_m=505, source="fixed")
    )
    assert confirmed == patrol
    assert case_of(sessions, patrol).state is CaseState.new


def test_both_passes_in_one_batch_confirm_the_case_they_open(sessions: sessionmaker[Session]) -> None:
    """A box back from a dead zone delivers both passes at once: one batch opens and confirms."""
    first, second = vending(T0), vending(T0 + timedelta(minutes=40), device_id="van-02", north_m=6)
    now = T0 + timedelta(hours=1)
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, now)
        batch.lock(events=[first, second])
        batch.preload([first, second])
        a, b = batch.add_event(first), batch.add_event(second)
        batch.finish()
    assert a.case_id == b.case_id and a.case_id is not None
    assert case_of(sessions, a.case_id).state is CaseState.new
    assert [step[1] for step in history(sessions, a.case_id)] == [
        CaseState.awaiting_recurrence,
        CaseState.new,
    ]


def test_a_pass_delivered_late_confirms_the_sighting_it_preceded(sessions: sessionmaker[Session]) -> None:
    """The second pass arrives first; the first pass comes hours later out of a box's outbox."""
    later, earlier = vending(T0 + timedelta(hours=3), device_id="van-02"), vending(T0, north_m=7)
    (waiting,) = ingest(sessions, later)
    assert case_of(sessions, waiting).state is CaseState.awaiting_recurrence
    (same,) = ingest(sessions, earlier, now=T0 + timedelta(hours=5))
    assert same == waiting
    case = case_of(sessions, waiting)
    assert (case.state, case.event_count, case.first_event_at) == (CaseState.new, 2, T0)
    with sessions() as session:
        step = session.scalars(select(CaseTransition).where(CaseTransition.case_id == waiting)).all()[-1]
        assert "180 min before the waiting sighting" in step.reason


def test_a_sighting_a_supervisor_rejected_absorbs_later_passes(sessions: sessionmaker[Session]) -> None:
    from server.cases.service import transition

    (sighting,) = ingest(sessions, vending(T0))
    with sessions.begin() as session:
        transition(
            session, sighting, CaseState.rejected, "rita", "a cafe's table", now=T0 + timedelta(minutes=5)
        )
    (later,) = ingest(sessions, vending(T0 + timedelta(minutes=50), device_id="van-02"))
    assert later == sighting and case_of(sessions, sighting).state is CaseState.rejected

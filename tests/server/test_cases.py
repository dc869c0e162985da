"""Case workflow on a real database: transitions recorded, invalid moves refused, coverage marks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.cases.coverage import mark_possibly_resolved
from server.cases.service import transition
from server.cases.workflow import ALLOWED, CaseNotFoundError, InvalidTransitionError
from server.db.models import Case, CaseState, CaseTransition
from server.ingest.process import ingest_event
from server.settings import ServerSettings
from streetwatch.messages import CoveragePoint
from tests.server.factories import T0, make_event, offset

SETTINGS = ServerSettings()
LATER = T0 + timedelta(hours=1)


def open_case(sessions: sessionmaker[Session], **kwargs) -> int:
    with sessions.begin() as session:
        outcome = ingest_event(session, make_event(**kwargs), T0, SETTINGS)
    assert outcome.case_id is not None
    return outcome.case_id


def history(sessions: sessionmaker[Session], case_id: int) -> list[tuple[str | None, str, str]]:
    with sessions() as session:
        rows = session.scalars(
            select(CaseTransition).where(CaseTransition.case_id == case_id).order_by(CaseTransition.id)
        )
        return [(r.from_state, r.to_state, r.actor) for r in rows]


def test_new_case_has_sla_priority_and_a_creation_record(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions, violation_type="street_vending", source="fixed")  # a fixed camera
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.state == "new"
        assert case.sla_due_at == T0 + timedelta(hours=SETTINGS.rule("street_vending").sla_hours)
        assert case.priority == SETTINGS.rule("street_vending").priority
        assert case.title.startswith("Street vending near")
    assert history(sessions, case_id) == [(None, "new", "system:ingest")]


def test_full_workflow_is_recorded_step_by_step(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions)
    steps = [
        ("confirmed", None, "looks right"),
        ("dispatched", "team-east", "send the sanitation crew"),
        ("resolved", None, "bin emptied"),
        ("closed", None, "done"),
    ]
    for state, team, reason in steps:
        with sessions.begin() as session:
            transition(session, case_id, state, "alice", reason, team=team, now=LATER)
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None
        assert case.state == "closed"
        assert case.assigned_team == "team-east"
        assert case.resolved_at == LATER and case.closed_at == LATER
        reasons = [t.reason for t in case.transitions]
    assert history(sessions, case_id)[1:] == [
        ("new", "confirmed", "alice"),
        ("confirmed", "dispatched", "alice"),
        ("dispatched", "resolved", "alice"),
        ("resolved", "closed", "alice"),
    ]
    assert reasons[1:] == [r for _, _, r in steps]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ([], "closed"),
        (["rejected"], "dispatched"),
        (["confirmed", "dispatched", "resolved", "closed"], "confirmed"),
    ],
)
def test_invalid_transitions_raise_and_change_nothing(sessions: sessionmaker[Session], path, bad) -> None:
    case_id = open_case(sessions)
    for state in path:
        with sessions.begin() as session:
            transition(session, case_id, state, "bob", "step", team="t1", now=LATER)
    before = history(sessions, case_id)
    with pytest.raises(InvalidTransitionError, match=f"cannot become {bad}"), sessions.begin() as session:
        transition(session, case_id, bad, "bob", "nope", team="t1", now=LATER)
    assert history(sessions, case_id) == before


def test_dispatch_needs_a_team(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions)
    with pytest.raises(InvalidTransitionError, match="needs a team"), sessions.begin() as session:
        transition(session, case_id, "dispatched", "bob", "go", now=LATER)


def test_unknown_case_is_reported(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(CaseNotFoundError, match="case 999"), sessions.begin() as session:
        transition(session, 999, "confirmed", "bob", "?", now=LATER)


def test_closed_is_final() -> None:
    assert ALLOWED[CaseState.closed] == frozenset()


def _pass_by(sessions: sessionmaker[Session], device: str, north_m: float, at) -> list[int]:
    lat, lon = offset(north_m)
    points = [CoveragePoint(lat=lat, lon=lon, at=at)]
    with sessions.begin() as session:
        return mark_possibly_resolved(session, device, points, SETTINGS, at + timedelta(seconds=5))


def test_patrol_passing_without_seeing_marks_possibly_resolved(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions)
    assert _pass_by(sessions, "van-09", 50, LATER) == []  # too far away
    assert _pass_by(sessions, "van-09", 10, LATER) == [case_id]
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.state == "possibly_resolved"
        assert case.possibly_resolved_at == LATER + timedelta(seconds=5)
    assert history(sessions, case_id)[-1] == ("new", "possibly_resolved", "system:coverage")


def test_passing_while_seeing_it_keeps_the_case_open(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions)
    with sessions.begin() as session:
        ingest_event(session, make_event(device_id="van-09", north_m=3, at=LATER), LATER, SETTINGS)
    assert _pass_by(sessions, "van-09", 5, LATER + timedelta(seconds=30)) == []
    with sessions() as session:
        assert session.get(Case, case_id).state == "new"  # type: ignore[union-attr]


def test_young_cases_are_not_marked(sessions: sessionmaker[Session]) -> None:
    open_case(sessions)
    assert _pass_by(sessions, "van-09", 0, T0 + timedelta(seconds=10)) == []


def test_seen_again_returns_a_possibly_resolved_case_to_its_state(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions)
    with sessions.begin() as session:
        transition(session, case_id, "confirmed", "alice", "ok", now=LATER)
    assert _pass_by(sessions, "van-09", 0, LATER) == [case_id]
    later = LATER + timedelta(minutes=30)
    with sessions.begin() as session:
        outcome = ingest_event(session, make_event(device_id="van-03", north_m=2, at=later), later, SETTINGS)
    assert outcome.case_id == case_id
    with sessions() as session:
        assert session.get(Case, case_id).state == "confirmed"  # type: ignore[union-attr]
    assert history(sessions, case_id)[-1] == ("possibly_resolved", "confirmed", "system:ingest")

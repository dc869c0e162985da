"""Two reviewers at once, on a real database: row locks make one win and the other get a conflict."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.cases.merge import merge_case
from server.cases.service import transition
from server.cases.workflow import InvalidTransitionError
from server.db.models import Case, CaseState, Event
from tests.server.test_cases import LATER, open_case


def _race(sessions: sessionmaker[Session], *moves: Callable[[Session], object]) -> list[str]:
    """Run each move in its own thread and transaction at the same moment; 'ok' or the error text."""
    start = threading.Barrier(len(moves))
    outcomes: list[str] = [""] * len(moves)

    def run(index: int, move: Callable[[Session], object]) -> None:
        start.wait()
        try:
            with sessions.begin() as session:
                move(session)
            outcomes[index] = "ok"
        except InvalidTransitionError as exc:
            outcomes[index] = str(exc)

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(moves)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return outcomes


def test_two_merges_of_one_pair_in_opposite_directions_leave_one_case(
    sessions: sessionmaker[Session],
) -> None:
    a = open_case(sessions, east_m=0)
    b = open_case(sessions, east_m=3000)
    outcomes = _race(
        sessions,
        lambda s: merge_case(s, a, b, "alice", "same pile", expected=CaseState.new, now=LATER),
        lambda s: merge_case(s, b, a, "bob", "same pile", expected=CaseState.new, now=LATER),
    )
    assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
    loser = next(o for o in outcomes if o != "ok")
    assert "is closed" in loser  # the other merge already closed one of the two
    with sessions() as session:
        states = sorted((c.state, c.merged_into is not None) for c in session.scalars(select(Case)))
        assert states == [("closed", True), ("new", False)]
        states_by_id = {c.id: c.state for c in session.scalars(select(Case))}
        survivor = next(i for i, state in states_by_id.items() if state == "new")
        owners = session.execute(select(Event.case_id, func.count()).group_by(Event.case_id)).all()
        assert owners == [(survivor, 2)]


def test_a_confirm_and_a_reject_at_once_record_one_decision(sessions: sessionmaker[Session]) -> None:
    case_id = open_case(sessions)
    at = LATER + timedelta(minutes=1)
    outcomes = _race(
        sessions,
        lambda s: transition(s, case_id, CaseState.confirmed, "alice", "", expected=CaseState.new, now=at),
        lambda s: transition(s, case_id, CaseState.rejected, "bob", "", expected=CaseState.new, now=at),
    )
    assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
    with sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.state in ("confirmed", "rejected")
        assert len(case.transitions) == 2  # the creation and the one decision that won

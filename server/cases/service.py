"""Changing cases: the values of a new case, and moves through the workflow.

Every state change goes through :func:`transition` (or :func:`seen_again`, or
ingest's bulk insert of :func:`creation_transition_values`) so that ``case_transitions`` holds the full
history: who, when, why, from which state to which. Functions take a session
and never commit; the caller owns the transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.workflow import CaseNotFoundError, InvalidTransitionError, check_transition
from server.db.models import Case, CaseState, CaseTransition
from server.matching.geohash import encode
from server.settings import CELL_PRECISION, MatchingRule
from streetwatch.events import ViolationEvent, utcnow

SYSTEM_INGEST = "system:ingest"
SYSTEM_COVERAGE = "system:coverage"

_TYPE_TITLES = {
    "street_vending": "Street vending",
    "garbage_overflow": "Garbage overflow",
    "illegal_signboard": "Illegal signboard",
    "unsealed_truck": "Unsealed truck",
}


def case_title(event: ViolationEvent) -> str:
    what = _TYPE_TITLES.get(event.violation_type.value, event.violation_type.value)
    place = event.place
    if place is None:
        return f"{what} seen by {event.device_id} (no position)"
    return f"{what} near {place.lat:.5f}, {place.lon:.5f}"


def new_case_values(
    event: ViolationEvent,
    rule: MatchingRule,
    now: datetime,
    *,
    recurrence_of: int | None = None,
    state: CaseState = CaseState.new,
) -> dict[str, Any]:
    """Column values of the case ``event`` opens (ingest inserts them in bulk); ``state`` is ``new``
    or, for a patrol's sighting that waits for a second pass, ``awaiting_recurrence``."""
    seen_at = min(event.observed_at, now)
    position = event.place
    return {
        "violation_type": event.violation_type.value,
        "state": state,
        "priority": rule.priority,
        "title": case_title(event),
        "lat": position.lat if position else None,
        "lon": position.lon if position else None,
        "cell": encode(position.lat, position.lon, CELL_PRECISION) if position else None,
        "device_id": event.device_id,
        "track_id": event.track_id,
        "opened_at": now,
        "first_event_at": seen_at,
        "last_event_at": seen_at,
        "sla_due_at": seen_at + timedelta(hours=rule.sla_hours),
        "event_count": 0,
        "device_count": 0,
        "max_score": 0.0,
        "candidate": event.candidate,
        "recurrence_of": recurrence_of,
        "updated_at": now,
    }


def creation_transition_values(
    case_id: int,
    event: ViolationEvent,
    now: datetime,
    recurrence_of: int | None,
    state: CaseState = CaseState.new,
) -> dict[str, Any]:
    """The ``case_transitions`` row that records how a case was opened (in ``state``)."""
    reason = f"opened by event {event.event_id} from {event.device_id}"
    if recurrence_of is not None:
        reason += f"; recurrence of case {recurrence_of}"
    if state is CaseState.awaiting_recurrence:
        reason += "; a patrol's first sighting: waits for a second pass"
    return {
        "case_id": case_id,
        "from_state": None,
        "to_state": state,
        "actor": SYSTEM_INGEST,
        "reason": reason,
        "team": None,
        "at": now,
    }


def seen_again(session: Session, case: Case, event: ViolationEvent, now: datetime) -> None:
    """A possibly-resolved case that is seen again goes back to the state it had before."""
    if case.state is not CaseState.possibly_resolved:
        return
    back = state_before_possibly_resolved(session, case.id)
    reason = f"seen again by {event.device_id} (event {event.event_id})"
    record_transition(session, case, CaseState.possibly_resolved, back, SYSTEM_INGEST, reason, now=now)
    case.state = back
    case.possibly_resolved_at = None


def state_before_possibly_resolved(session: Session, case_id: int) -> CaseState:
    """The state a case had when a patrol pass made it possibly resolved (``new`` if unknown).

    Notes and other annotations written while it was possibly resolved are steps from
    possibly_resolved to itself; they are not where it came from.
    """
    previous = session.scalar(
        select(CaseTransition.from_state)
        .where(
            CaseTransition.case_id == case_id,
            CaseTransition.to_state == CaseState.possibly_resolved,
            CaseTransition.from_state.is_not(None),
            CaseTransition.from_state != CaseState.possibly_resolved,
        )
        .order_by(CaseTransition.id.desc())
        .limit(1)
    )
    return previous or CaseState.new


def lock_case(session: Session, case_id: int, expected: CaseState | None) -> Case:
    """Case ``case_id``, its row locked for the rest of the transaction; checks ``expected`` under
    the lock (of two reviewers acting on what they both saw, one wins; the other gets a 409)."""
    case = session.scalars(select(Case).where(Case.id == case_id).with_for_update()).one_or_none()
    if case is None:
        raise CaseNotFoundError(f"case {case_id} does not exist")
    current = case.state
    if expected is not None and current is not expected:
        raise InvalidTransitionError(
            f"case {case_id} is {current} now, not {expected} as seen: someone acted on it "
            "first; reload it and decide again",
            case_id=case_id,
            state=current,
            expected=expected,
        )
    return case


def record_step(
    session: Session,
    case_id: int,
    actor: str,
    reason: str,
    action: str,
    *,
    label: str | None = None,
    details: dict[str, Any] | None = None,
    expected: CaseState | None = None,
    now: datetime | None = None,
    allow_closed: bool = False,
) -> Case:
    """Record an action that changes no state (a note, a relabel, drawn boxes) in the history.

    Same checks as :func:`transition`: the case exists, is in ``expected`` when given, and is not
    closed unless ``allow_closed`` (a note may still be added to a closed case).
    """
    at = now or utcnow()
    case = lock_case(session, case_id, expected)
    current = case.state
    if current is CaseState.closed and not allow_closed:
        raise InvalidTransitionError(
            f"case {case_id} is closed; it takes notes only (reopen is not possible: a new sighting opens a"
            " new case)",
            case_id=case_id,
            state=current,
            expected=expected,
        )
    record_transition(
        session, case, current, current, actor, reason, label=label, action=action, details=details, now=at
    )
    case.updated_at = at
    return case


def transition(
    session: Session,
    case_id: int,
    to_state: CaseState | str,
    actor: str,
    reason: str,
    team: str | None = None,
    *,
    label: str | None = None,
    action: str | None = None,
    expected: CaseState | None = None,
    reason_code: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> Case:
    """Move case ``case_id`` to ``to_state`` on behalf of ``actor``, recording why.

    Raises :class:`~server.cases.workflow.CaseNotFoundError` for an unknown id and
    :class:`~server.cases.workflow.InvalidTransitionError` for a move the workflow
    does not allow (e.g. closed -> confirmed, or dispatching without a team), or when the
    case is no longer in the ``expected`` state. The case row is locked for the rest of the
    transaction.
    """
    at = now or utcnow()
    target = CaseState(to_state)
    case = lock_case(session, case_id, expected)
    current = case.state
    check_transition(case_id, current, target, team)
    record_transition(
        session,
        case,
        current,
        target,
        actor,
        reason,
        team=team,
        label=label,
        action=action,
        reason_code=reason_code,
        details=details,
        now=at,
    )
    case.state = target
    case.updated_at = at
    if target is CaseState.dispatched:
        case.assigned_team = team
    elif target is CaseState.possibly_resolved:
        case.possibly_resolved_at = at
    elif target is CaseState.resolved:
        case.resolved_at = at
    elif target is CaseState.closed:
        case.closed_at = at
    if target in (CaseState.new, CaseState.confirmed, CaseState.dispatched):
        # Back in play: clear the marks of a resolution that did not hold.
        case.possibly_resolved_at = None
        case.resolved_at = None
    if current is CaseState.dispatched and target in (CaseState.new, CaseState.confirmed):
        # Taken back from the team (to be dispatched again); the history keeps who had it.
        case.assigned_team = None
    return case


def record_transition(
    session: Session,
    case: Case,
    from_state: CaseState | None,
    to_state: CaseState,
    actor: str,
    reason: str,
    *,
    team: str | None = None,
    label: str | None = None,
    action: str | None = None,
    reason_code: str | None = None,
    details: dict[str, Any] | None = None,
    now: datetime,
) -> CaseTransition:
    step = CaseTransition(
        case=case,
        from_state=from_state,
        to_state=to_state,
        actor=actor,
        reason=reason,
        team=team,
        label=label,
        action=action,
        reason_code=reason_code,
        details=details,
        at=now,
    )
    session.add(step)
    return step

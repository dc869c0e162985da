"""Merging a duplicate case into another: one real violation, one case.

The merged case's events move to the target (so its evidence, time line and labels follow), the
target's counters and times are recomputed from its events, and the merged case is closed with
reason code ``duplicate`` and ``merged_into`` set. Both histories record the merge. What a reviewer
drew on the duplicate goes to the target when the target has no drawing of its own. Any case that is
not closed may be merged: merging is how a reviewer says "this is that one", whatever state the
duplicate had reached.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from server.cases.review import RejectReason, ReviewError
from server.cases.service import record_transition
from server.cases.states import HELD_STATES
from server.cases.workflow import CaseNotFoundError, InvalidTransitionError
from server.db.models import Case, CaseReview, CaseState, Event


def merge_case(
    session: Session,
    source_id: int,
    target_id: int,
    actor: str,
    reason: str,
    *,
    expected: CaseState | None = None,
    details: dict[str, object] | None = None,
    now: datetime,
) -> Case:
    """Merge case ``source_id`` into ``target_id``; return the target. The caller commits."""
    if source_id == target_id:
        raise ReviewError(f"case {source_id} cannot be merged into itself")
    # Lock both rows in id order so two merges of the same pair cannot deadlock.
    rows = session.scalars(
        select(Case).where(Case.id.in_((source_id, target_id))).order_by(Case.id).with_for_update()
    ).all()
    found = {case.id: case for case in rows}
    for wanted in (source_id, target_id):
        if wanted not in found:
            raise CaseNotFoundError(f"case {wanted} does not exist")
    source, target = found[source_id], found[target_id]
    source_state, target_state = source.state, target.state
    if expected is not None and source_state is not expected:
        raise InvalidTransitionError(
            f"case {source_id} is {source_state} now, not {expected} as seen: someone acted on "
            "it first; reload it and decide again",
            case_id=source_id,
            state=source_state,
            expected=expected,
        )
    if source_state is CaseState.closed:
        raise InvalidTransitionError(
            f"case {source_id} is closed; a closed case cannot be merged",
            case_id=source_id,
            state=source_state,
        )
    if target_state is CaseState.closed:
        raise InvalidTransitionError(
            f"case {target_id} is closed; merge into an open case", case_id=target_id, state=target_state
        )
    if target_state in HELD_STATES:  # the merged case would leave the queue with it
        raise InvalidTransitionError(
            f"case {target_id} is a sighting ({target_state}), not a case dispatchers see; merge it into "
            f"case {source_id} instead",
            case_id=target_id,
            state=target_state,
        )
    if source.violation_type != target.violation_type:
        raise ReviewError(
            f"case {source_id} is {source.violation_type} and case {target_id} is {target.violation_type};"
            " only cases of one violation type can be merged"
        )
    moved = session.scalar(select(func.count()).select_from(Event).where(Event.case_id == source_id)) or 0
    session.execute(update(Event).where(Event.case_id == source_id).values(case_id=target_id))
    _recount(session, target, source)
    extra = dict(details or {})
    review = session.get(CaseReview, source_id)
    if review is not None and session.get(CaseReview, target_id) is None:
        # What was drawn on the duplicate's frame describes the same object, and that frame's
        # event now belongs to the target: the drawing goes with it.
        session.delete(review)
        session.flush()
        session.add(
            CaseReview(
                case_id=target_id,
                event_id=review.event_id,
                box=review.box,
                added_boxes=review.added_boxes,
                attributes=review.attributes,
                updated_by=review.updated_by,
                updated_at=review.updated_at,
            )
        )
        extra["review_moved"] = True
    record_transition(
        session,
        source,
        source_state,
        CaseState.closed,
        actor,
        reason or f"duplicate of case {target_id}",
        action="merge",
        reason_code=RejectReason.duplicate.value,
        details={**extra, "merged_into": target_id, "events_moved": moved},
        now=now,
    )
    record_transition(
        session,
        target,
        target_state,
        target_state,
        actor,
        reason or f"case {source_id} merged in",
        action="merge",
        details={**extra, "merged_from": source_id, "events_moved": moved},
        now=now,
    )
    source.state = CaseState.closed
    source.merged_into = target_id
    source.closed_at = now
    source.updated_at = now
    source.event_count = 0
    source.device_count = 0
    target.updated_at = now
    return target


def _recount(session: Session, target: Case, source: Case) -> None:
    """The target's counters from its events now; times, score, SLA and priority over both cases."""
    count, devices = session.execute(
        select(func.count(), func.count(func.distinct(Event.device_id))).where(Event.case_id == target.id)
    ).one()
    target.event_count = int(count)
    target.device_count = int(devices)
    target.first_event_at = min(target.first_event_at, source.first_event_at)
    target.last_event_at = max(target.last_event_at, source.last_event_at)
    target.max_score = max(target.max_score, source.max_score)
    target.candidate = target.candidate and source.candidate
    target.priority = min(target.priority, source.priority)  # 1 is the most urgent
    dues = [d for d in (target.sla_due_at, source.sla_due_at) if d is not None]
    target.sla_due_at = min(dues) if dues else None

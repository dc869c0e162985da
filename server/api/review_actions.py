"""What a review action does to a case, shared by ``POST /cases/{id}/actions`` (:mod:`server.api.reviews`)
and ``POST /cases/bulk-actions`` (:mod:`server.api.bulk`): the body checks, the transition, the
review data and the sign register. Nothing here commits; the routes own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from server.api.case_views import sign_reach
from server.api.schemas.cases import CaseAction, CaseActionCreate
from server.api.schemas.reviews import ReviewIn
from server.cases.merge import merge_case
from server.cases.review import (
    AttributeChange,
    RejectReason,
    ReviewChange,
    apply_review,
    check_fits_decision,
)
from server.cases.service import lock_case, record_step, state_before_possibly_resolved, transition
from server.cases.workflow import InvalidTransitionError, check_transition
from server.db.models import Case, CaseState
from server.evidence_store import EvidenceStore
from server.signs.service import register_from_case, unregister_case
from server.teams import dispatch_refusal
from streetwatch.taxonomy import Taxonomy

_TARGETS: dict[CaseAction, CaseState] = {
    CaseAction.confirm: CaseState.confirmed,
    CaseAction.reject: CaseState.rejected,
    CaseAction.dispatch: CaseState.dispatched,
    CaseAction.resolve: CaseState.resolved,
    CaseAction.close: CaseState.closed,
}
_LABELLED = (CaseAction.confirm, CaseAction.reject, CaseAction.relabel)
# Dispatch too: dispatching a new case decides it, and the console sends its truck's load with it.
_REVIEWED = (CaseAction.confirm, CaseAction.reject, CaseAction.dispatch, CaseAction.annotate)
# A case in these states is held to be a violation: a change to its review must not say otherwise.
_DECIDED_VIOLATION = (CaseState.confirmed, CaseState.dispatched)
# Actions that say the case is a violation, as the refusal of a contradicting review names them.
_SAYS_VIOLATION = {CaseAction.confirm: "confirming", CaseAction.dispatch: "dispatching"}


@dataclass(frozen=True)
class ReviewContext:
    """What actions are checked against: the taxonomy's classes and attributes."""

    taxonomy: Taxonomy
    classes: frozenset[str]
    # Where a signboard marked permitted gets its crop for the sign register (None: place only).
    evidence_store: EvidenceStore | None = None
    # How far from a permitted case a permit registered since it opened is its sign (0: never).
    sign_reach_m: float = 0.0

    @classmethod
    def of(cls, request: Request) -> ReviewContext:
        return cls(
            taxonomy=request.app.state.taxonomy,
            classes=request.app.state.label_names,
            evidence_store=request.app.state.evidence_store,
            sign_reach_m=sign_reach(request),
        )


def unprocessable(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=message)


def check_body(body: CaseActionCreate, context: ReviewContext) -> None:
    """422 for a body that does not fit its action; nothing is looked up in the database."""
    action = body.action
    if action is CaseAction.dispatch and not body.team:
        raise unprocessable("dispatch needs a team (or grid) name")
    if action is not CaseAction.dispatch and body.team is not None:
        raise unprocessable(f"team is only for dispatch, not {action.value}")
    if body.label is not None:
        if action not in _LABELLED:
            raise unprocessable(f"label is only for confirm or reject (or relabel), not {action.value}")
        if body.label not in context.classes:
            raise unprocessable(
                f"label {body.label!r} is not a detector class of the taxonomy; known: "
                + ", ".join(sorted(context.classes))
            )
    if action is CaseAction.relabel and body.label is None:
        raise unprocessable("relabel needs a label: the detector class the object is")
    if body.reject_reason is not None and action is not CaseAction.reject:
        raise unprocessable(f"reject_reason is only for reject, not {action.value}")
    if body.review is not None and action not in _REVIEWED:
        raise unprocessable(f"review is only for confirm, reject, dispatch or annotate, not {action.value}")
    if action is CaseAction.annotate and (body.review is None or review_change(body.review).is_empty()):
        raise unprocessable("annotate needs a review with a box, added_boxes, attributes or event_id")
    if (body.into_case_id is not None) != (action is CaseAction.merge):
        raise unprocessable("merge needs into_case_id, and only merge takes it")
    if action is CaseAction.note and not body.reason.strip():
        raise unprocessable("a note needs its text in reason")


def check_team(session: Session, body: CaseActionCreate) -> None:
    """422 naming the active teams for a dispatch to a team the register does not offer.

    Free text while no team is defined at all (:mod:`server.teams`).
    """
    if body.action is CaseAction.dispatch and body.team is not None:
        refusal = dispatch_refusal(session, body.team)
        if refusal is not None:
            raise unprocessable(refusal)


def review_change(review: ReviewIn) -> ReviewChange:
    attributes: dict[str, AttributeChange | None] | None = None
    if review.attributes is not None:
        attributes = {
            name: None if a is None else AttributeChange(value=a.value, box=a.box)
            for name, a in review.attributes.items()
        }
    return ReviewChange(
        event_id=review.event_id,
        box_given="box" in review.model_fields_set,
        box=review.box,
        added_boxes=None
        if review.added_boxes is None
        else [(b.class_name, b.box) for b in review.added_boxes],
        attributes=attributes,
    )


def perform(
    session: Session,
    case_id: int,
    body: CaseActionCreate,
    actor: str,
    context: ReviewContext,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> None:
    """Do ``body`` on case ``case_id`` in ``session`` (not committed).

    Raises :class:`CaseNotFoundError`, :class:`InvalidTransitionError` (409) or
    :class:`ReviewError` (422).
    """
    action = body.action
    details: dict[str, Any] = dict(extra or {})
    if action is CaseAction.merge:
        assert body.into_case_id is not None  # check_body saw to it
        merge_case(
            session,
            case_id,
            body.into_case_id,
            actor,
            body.reason,
            expected=body.expected_state,
            details=details or None,
            now=now,
        )
        return
    case = lock_case(session, case_id, body.expected_state)
    current = case.state
    if action in (CaseAction.note, CaseAction.relabel, CaseAction.annotate):
        if body.review is not None:
            if current is CaseState.closed:
                raise InvalidTransitionError(
                    f"case {case_id} is closed; it takes notes only", case_id=case_id, state=current
                )
            details.update(_apply(session, case, body.review, actor, context, now))
            if current in _DECIDED_VIOLATION:
                _check_fits(session, case, context, True, f"the case is {current.value} as one")
        record_step(
            session,
            case_id,
            actor,
            body.reason,
            action.value,
            label=body.label,
            details=details or None,
            now=now,
            allow_closed=action is CaseAction.note,
        )
        return
    target = _TARGETS.get(action) or reopen_target(session, case)
    # Reopening back into "dispatched" keeps the team it was dispatched to.
    team = body.team if action is CaseAction.dispatch else None
    if target is CaseState.dispatched and team is None:
        team = case.assigned_team
    check_transition(case_id, current, target, team)  # before drawing anything
    if body.review is not None:
        details.update(_apply(session, case, body.review, actor, context, now))
    if action in _SAYS_VIOLATION:
        _check_fits(session, case, context, True, f"{_SAYS_VIOLATION[action]} says it is one")
    elif body.reject_reason is RejectReason.not_a_violation:
        _check_fits(session, case, context, False, "rejecting it as not_a_violation says it is none")
    details.update(_sign_register(session, case, body, current, actor, context, now))
    transition(
        session,
        case_id,
        target,
        actor,
        body.reason,
        team=team,
        label=body.label,
        action=action.value,
        reason_code=body.reject_reason.value if body.reject_reason else None,
        details=details or None,
        now=now,
    )


def _sign_register(
    session: Session,
    case: Case,
    body: CaseActionCreate,
    current: CaseState,
    actor: str,
    context: ReviewContext,
    now: datetime,
) -> dict[str, Any]:
    """A signboard rejected as permitted enters the sign register; reopening it takes it out again."""
    if body.action is CaseAction.reject and body.reject_reason is RejectReason.permitted:
        sign = register_from_case(
            session, case.id, actor, context.evidence_store, now, since_reach_m=context.sign_reach_m
        )
        return {} if sign is None else {"sign_id": sign.id}
    if body.action is CaseAction.reopen and current is CaseState.rejected:
        removed = unregister_case(session, case.id)
        return {"signs_removed": removed} if removed else {}
    return {}


def _check_fits(session: Session, case: Case, context: ReviewContext, violation: bool, decision: str) -> None:
    attributes = context.taxonomy.attributes_for(case.violation_type)
    if attributes:
        check_fits_decision(session, case, violation, attributes, decision)


def _apply(
    session: Session, case: Case, review: ReviewIn, actor: str, context: ReviewContext, now: datetime
) -> dict[str, Any]:
    return apply_review(
        session,
        case,
        review_change(review),
        classes=context.classes,
        attributes=context.taxonomy.attributes_for(case.violation_type),
        actor=actor,
        now=now,
    )


def conflict(exc: InvalidTransitionError, expected: CaseState | None) -> JSONResponse:
    """The 409 answer: the message, and where the case is now so the page can reload it."""
    return JSONResponse(
        status_code=status.HTTP_409_CONFLICT,
        content={
            "detail": str(exc),
            "case_id": exc.case_id,
            "state": exc.state,
            "expected_state": expected,
        },
    )


def reopen_target(session: Session, case: Case) -> CaseState:
    """Where ``reopen`` takes a case from its current state; a conflict for states it does not apply to."""
    state = case.state
    if state is CaseState.rejected:
        return CaseState.new
    if state is CaseState.resolved:
        return CaseState.confirmed
    if state is CaseState.possibly_resolved:
        return state_before_possibly_resolved(session, case.id)
    raise InvalidTransitionError(
        f"case {case.id} is {state}; reopen applies to rejected, resolved or possibly_resolved "
        "cases (a closed case is final: a new sighting opens a new case)",
        case_id=case.id,
        state=state,
    )

"""``POST /cases/bulk-actions``: one action on many cases, with a result per case.

A dispatcher clears a night of false candidates from one box with one request: the selection is
the queue's own filters (or a list of ids), every case is acted on in its own transaction through
the same code as a single action, and every case gets a result, so a conflict on one (someone
moved it meanwhile: 409) is listed, never skipped silently, and undoes nothing else.

Without ``expected_state`` each case is expected in the state it had when the selection was read.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.api.case_filters import CaseFilter
from server.api.deps import ReviewerDep, SessionDep, utcnow
from server.api.query import QueryError
from server.api.review_actions import ReviewContext, check_body, check_team, perform, unprocessable
from server.api.schemas.cases import CaseActionCreate
from server.api.schemas.reviews import BulkActionCreate, BulkAnswer, BulkResult
from server.cases.review import ReviewError
from server.cases.workflow import CaseNotFoundError, InvalidTransitionError
from server.db.models import Case, CaseState
from streetwatch.events import ViolationType, summarise_validation_error
from streetwatch.taxonomy import Taxonomy

router = APIRouter(prefix="/cases", tags=["reviews"])

#: Most cases one call may touch: a filter matching more is refused rather than acted on.
MAX_BULK = 1000
_BULK_ACTIONS = frozenset({"confirm", "reject", "dispatch", "resolve", "close", "reopen", "relabel", "note"})


@router.post(
    "/bulk-actions",
    response_model=BulkAnswer,
    summary="One action on many cases (a filter or ids), with a result per case (reviewer)",
    responses={422: {"description": "A bad body, an action bulk does not take, or too many cases."}},
)
def bulk_action(
    request: Request, body: BulkActionCreate, session: SessionDep, caller: ReviewerDep
) -> BulkAnswer:
    if body.action not in _BULK_ACTIONS:
        raise unprocessable(
            f"bulk actions are {', '.join(sorted(_BULK_ACTIONS))}; {body.action!r} is per case only"
        )
    if (body.filter is None) == (body.case_ids is None):
        raise unprocessable("select the cases with exactly one of filter or case_ids")
    try:
        single = CaseActionCreate.model_validate(
            {
                "action": body.action,
                "reason": body.reason,
                "reject_reason": body.reject_reason,
                "label": body.label,
                "team": body.team,
            }
        )
    except ValidationError as exc:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=exc.errors(include_url=False)
        ) from None
    context = ReviewContext.of(request)
    check_body(single, context)
    check_team(session, single)
    selected = _select(session, body, context.taxonomy)
    results: list[BulkResult] = []
    bulk_id = uuid.uuid4().hex[:12]
    for case_id, seen_state in selected:
        expected = body.expected_state or seen_state
        if body.dry_run:
            results.append(BulkResult(case_id=case_id, status=200, state=seen_state, detail=None))
            continue
        action = single.model_copy(update={"expected_state": expected})
        results.append(_one(session, case_id, action, caller.username, context, {"bulk": bulk_id}))
    failed = sum(1 for r in results if r.status != 200)
    return BulkAnswer(
        action=body.action,
        matched=len(selected),
        succeeded=len(results) - failed,
        failed=failed,
        dry_run=body.dry_run,
        results=results,
    )


def _select(
    session: Session, body: BulkActionCreate, taxonomy: Taxonomy
) -> list[tuple[int, CaseState | None]]:
    """(case id, state when selected) for every case the body names, oldest id first."""
    if body.case_ids is not None:
        ids = list(dict.fromkeys(body.case_ids))
        states = dict(session.execute(select(Case.id, Case.state).where(Case.id.in_(ids))).all())
        return [(i, states.get(i)) for i in ids]
    raw = body.filter
    assert raw is not None
    try:
        violation = ViolationType(raw.violation_type) if raw.violation_type is not None else None
    except ValueError:
        known = ", ".join(t.value for t in ViolationType)
        raise unprocessable(f"filter.violation_type {raw.violation_type!r} is not one of {known}") from None
    try:
        filters = CaseFilter(
            state=tuple(raw.state or ()),
            violation_type=violation,
            priority=raw.priority,
            candidate=raw.candidate,
            device_id=raw.device_id,
            assigned_team=raw.assigned_team,
            since=raw.since,
            until=raw.until,
            bbox=raw.bbox,
            overdue=raw.overdue,
            attribute=raw.attribute,
        )
    except ValidationError as exc:
        raise unprocessable(f"filter: {summarise_validation_error(exc)}") from None
    try:
        filters.check_attribute(taxonomy)
    except QueryError as exc:
        raise unprocessable(f"filter.{exc}") from None
    conditions = filters.conditions(utcnow())
    count = session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
    if count > MAX_BULK:
        raise unprocessable(
            f"the filter matches {count} cases; one bulk action takes at most {MAX_BULK}: narrow the filter"
        )
    rows = session.execute(select(Case.id, Case.state).where(*conditions).order_by(Case.id)).all()
    return [(case_id, state) for case_id, state in rows]


def _one(
    session: Session,
    case_id: int,
    action: CaseActionCreate,
    actor: str,
    context: ReviewContext,
    extra: dict[str, str],
) -> BulkResult:
    """Act on one case in its own transaction; the result says how it went."""
    try:
        perform(session, case_id, action, actor, context, utcnow(), extra)
        session.commit()
    except CaseNotFoundError as exc:
        session.rollback()
        return BulkResult(case_id=case_id, status=404, state=None, detail=str(exc))
    except InvalidTransitionError as exc:
        session.rollback()
        return BulkResult(case_id=case_id, status=409, state=exc.state, detail=str(exc))
    except ReviewError as exc:
        session.rollback()
        return BulkResult(case_id=case_id, status=422, state=_state(session, case_id), detail=str(exc))
    except HTTPException as exc:
        session.rollback()
        return BulkResult(
            case_id=case_id, status=exc.status_code, state=_state(session, case_id), detail=str(exc.detail)
        )
    return BulkResult(case_id=case_id, status=200, state=_state(session, case_id), detail=None)


def _state(session: Session, case_id: int) -> CaseState | None:
    return session.scalar(select(Case.state).where(Case.id == case_id))

"""``POST /cases/{id}/actions``: what reviewers do to cases; each action is a recorded transition.

=========  ===============================================================
action     new state
=========  ===============================================================
confirm    confirmed
reject     rejected
dispatch   dispatched (``team`` required; re-dispatching re-assigns)
resolve    resolved
close      closed (final)
reopen     rejected -> new; resolved -> confirmed; possibly_resolved -> the
           state it had before the patrol pass
=========  ===============================================================

A move the workflow does not allow answers 409 with the allowed moves.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.api.cases import case_detail, load_case
from server.api.deps import ReviewerDep, SessionDep, utcnow
from server.api.links import EvidenceLinks
from server.api.schemas.cases import CaseAction, CaseActionCreate, CaseDetail
from server.cases.service import transition
from server.cases.workflow import CaseNotFoundError, InvalidTransitionError
from server.db.models import Case, CaseState, CaseTransition

router = APIRouter(prefix="/cases", tags=["reviews"])

_TARGETS: dict[CaseAction, CaseState] = {
    CaseAction.confirm: CaseState.confirmed,
    CaseAction.reject: CaseState.rejected,
    CaseAction.dispatch: CaseState.dispatched,
    CaseAction.resolve: CaseState.resolved,
    CaseAction.close: CaseState.closed,
}


def check_label(request: Request, body: CaseActionCreate) -> None:
    """A label names a detector class of the taxonomy, and only a confirm or a reject carries one."""
    if body.label is None:
        return
    if body.action not in (CaseAction.confirm, CaseAction.reject):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"label is only for confirm or reject, not {body.action.value}",
        )
    known: frozenset[str] = request.app.state.label_names
    if body.label not in known:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"label {body.label!r} is not a detector class of the taxonomy; known: "
            + ", ".join(sorted(known)),
        )


@router.post(
    "/{case_id}/actions",
    response_model=CaseDetail,
    summary="Review a case: confirm, reject, dispatch, resolve, close or reopen (reviewer)",
    responses={
        404: {"description": "No such case."},
        409: {"description": "The workflow does not allow this action from the case's state."},
    },
)
def act_on_case(
    request: Request, case_id: int, body: CaseActionCreate, session: SessionDep, caller: ReviewerDep
) -> CaseDetail:
    if body.action is CaseAction.dispatch and not body.team:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail="dispatch needs a team (or grid) name"
        )
    if body.action is not CaseAction.dispatch and body.team is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=f"team is only for dispatch, not {body.action.value}",
        )
    check_label(request, body)
    case = load_case(session, case_id)
    target = _TARGETS.get(body.action) or reopen_target(session, case)
    # Reopening back into "dispatched" keeps the team it was dispatched to.
    team = body.team if body.action is CaseAction.dispatch else None
    if target is CaseState.dispatched and team is None:
        team = case.assigned_team
    try:
        transition(
            session,
            case_id,
            target,
            caller.username,
            body.reason,
            team=team,
            label=body.label,
            action=body.action.value,
            expected=body.expected_state,
            now=utcnow(),
        )
    except CaseNotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except InvalidTransitionError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    session.commit()
    return case_detail(session, load_case(session, case_id), EvidenceLinks(request))


def reopen_target(session: Session, case: Case) -> CaseState:
    """Where ``reopen`` takes a case from its current state; 409 for states it does not apply to."""
    state = CaseState(case.state)
    if state is CaseState.rejected:
        return CaseState.new
    if state is CaseState.resolved:
        return CaseState.confirmed
    if state is CaseState.possibly_resolved:
        before = session.scalar(
            select(CaseTransition.from_state)
            .where(
                CaseTransition.case_id == case.id,
                CaseTransition.to_state == CaseState.possibly_resolved.value,
            )
            .order_by(CaseTransition.id.desc())
            .limit(1)
        )
        return CaseState(before) if before else CaseState.new
    raise HTTPException(
        status.HTTP_409_CONFLICT,
        detail=f"case {case.id} is {state.value}; reopen applies to rejected, resolved or possibly_resolved "
        "cases (a closed case is final: a new sighting opens a new case)",
    )

"""``POST /cases/{id}/actions``: what reviewers do to cases; each action is a recorded transition.

=========  ===============================================================
action     new state
=========  ===============================================================
confirm    confirmed (may carry a label and review data)
reject     rejected (``reject_reason`` from the fixed set; a label; review data)
dispatch   dispatched (``team`` required; re-dispatching re-assigns)
resolve    resolved
close      closed (final)
reopen     rejected -> new; resolved -> confirmed; possibly_resolved -> the
           state it had before the patrol pass
relabel    unchanged: the class the object is labelled as (``label``)
annotate   unchanged: corrected box, added boxes, attributes (``review``)
note       unchanged: ``reason`` is the note (closed cases take notes too)
merge      closed, with its events moved to ``into_case_id`` (:mod:`server.cases.merge`)
=========  ===============================================================

A move the workflow does not allow, or one on a case that is no longer in ``expected_state``,
answers 409 with the case's state now (``{"detail", "case_id", "state", "expected_state"}``).
``docs/api-review.md`` is the contract the console is built on.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse

from server.api.case_views import case_detail, load_case, sign_reach
from server.api.deps import ReviewerDep, SessionDep, utcnow
from server.api.links import EvidenceLinks
from server.api.review_actions import ReviewContext, check_body, check_team, conflict, perform, unprocessable
from server.api.schemas.cases import CaseActionCreate, CaseDetail
from server.cases.review import ReviewError
from server.cases.workflow import CaseNotFoundError, InvalidTransitionError

router = APIRouter(prefix="/cases", tags=["reviews"])


@router.post(
    "/{case_id}/actions",
    response_model=CaseDetail,
    summary="Review a case: confirm, reject, dispatch, resolve, close, reopen, relabel, annotate, note, merge"
    " (reviewer)",
    responses={
        404: {"description": "No such case."},
        409: {
            "description": "The case is no longer in expected_state, or the workflow does not allow the"
            " action: {detail, case_id, state, expected_state}."
        },
        422: {
            "description": "The body does not fit the action (a box outside the frame, an unknown class...)."
        },
    },
)
def act_on_case(
    request: Request, case_id: int, body: CaseActionCreate, session: SessionDep, caller: ReviewerDep
) -> CaseDetail | JSONResponse:
    context = ReviewContext.of(request)
    check_body(body, context)
    check_team(session, body)
    try:
        perform(session, case_id, body, caller.username, context, utcnow())
    except CaseNotFoundError as exc:
        session.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    except InvalidTransitionError as exc:
        session.rollback()
        return conflict(exc, body.expected_state)
    except ReviewError as exc:
        session.rollback()
        raise unprocessable(str(exc)) from None
    session.commit()
    return case_detail(
        session, load_case(session, case_id), EvidenceLinks(request), sign_reach_m=sign_reach(request)
    )

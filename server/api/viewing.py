"""``POST /viewing``: a console says which case it shows, and hears which cases others have open.

Two dispatchers who open the same case both decide it; the second learns it only from a conflict
after the work is done. Each console page sends the case it shows on every change and every 15 s
(``presence.js``), and the answer lists every case someone else has open, so the queue marks those
rows and the case view names who is on it. A page closed without a word drops
out after ``FRESH_S``. It is a courtesy, not a lock: a decision is still guarded by the state the
reviewer saw (a 409 when someone else moved the case).
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, status
from sqlalchemy import delete, select

from server.api.deps import SessionDep, ViewerDep, utcnow
from server.api.schemas.viewing import CaseViewers, Viewing, ViewingAnswer
from server.db.models import Case, CaseViewer, User, UserRole

router = APIRouter(prefix="/viewing", tags=["cases"])

#: A page not heard from this long no longer counts (three missed heartbeats of the console's 15 s).
FRESH_S = 45
#: Rows older than this are deleted when a new page first writes: closed tabs leave nothing behind.
#: Only a new page adds a row, so sweeping then keeps the table at the pages of the last minutes,
#: without a DELETE on every heartbeat of every console.
SWEEP_AFTER = timedelta(minutes=10)


@router.post("", response_model=ViewingAnswer, summary="This console's case; who else is on which (viewer)")
def viewing(body: Viewing, session: SessionDep, caller: ViewerDep) -> ViewingAnswer:
    now = utcnow()
    if body.case_id is not None and session.get(Case, body.case_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"case {body.case_id} not found")
    row = session.get(CaseViewer, (caller.username, body.tab))
    if row is None:
        session.execute(delete(CaseViewer).where(CaseViewer.seen_at < now - SWEEP_AFTER))
        session.add(CaseViewer(tab=body.tab, username=caller.username, case_id=body.case_id, seen_at=now))
    else:
        row.case_id, row.seen_at = body.case_id, now
    session.commit()
    # Only people who could decide a case are named on it: a read-only viewer looking on decides
    # nothing, so nobody needs to agree with them who takes it.
    fresh = session.execute(
        select(CaseViewer.case_id, CaseViewer.username)
        .join(User, User.username == CaseViewer.username)
        .where(
            CaseViewer.case_id.is_not(None),
            CaseViewer.seen_at >= now - timedelta(seconds=FRESH_S),
            CaseViewer.username != caller.username,
            User.role != UserRole.viewer.value,
        )
    ).all()
    by_case: dict[int, set[str]] = {}
    for case_id, username in fresh:
        if case_id is not None:  # the query keeps none; the column may hold it
            by_case.setdefault(case_id, set()).add(username)
    cases = [CaseViewers(case_id=key, usernames=sorted(names)) for key, names in sorted(by_case.items())]
    return ViewingAnswer(cases=cases, fresh_s=FRESH_S)

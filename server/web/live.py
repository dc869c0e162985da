"""``GET /live/cases``: a Server-Sent Events stream of cases as they open or change.

The stream polls the database (``cases.updated_at``) instead of listening to the ingest
worker, so it works unchanged with several HTTP workers and several ingest workers: whatever
process wrote a change, every open console sees it within ``console.live_poll_s``.

A commit can land with an ``updated_at`` a little older than a change already streamed (its
clock was read before a slower transaction committed), so each poll looks back ``OVERLAP`` and
skips what it already sent. When more changed in one poll than a page holds, the stream says
``reset`` and the page reloads its list rather than miss some.

Messages (``event:`` name, JSON ``data``):

* ``ready``  ``{"cursor": ...}`` first, once the stream is live: load the list after this.
* ``cases``  ``{"cases": [CasePublic, ...]}`` new or changed cases, oldest change first.
* ``reset``  ``{}`` too many changes at once: reload the list.
* ``signed-out`` ``{}`` the credential stopped working (sign-out, revoked, disabled).

Each message's ``id`` is the cursor; a browser reconnecting sends it back as Last-Event-ID
and misses nothing in between. A stream ends after ``MAX_STREAM_S`` (the browser reconnects
at once); a stopping server ends them within one poll (``server.web.serving``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.api.case_views import case_rows
from server.api.deps import as_utc, bearer_scheme, check_role, current_principal
from server.api.links import EvidenceLinks
from server.api.schemas.cases import CasePublic
from server.auth import Role
from server.cases.states import HELD_STATES
from server.db.models import Case

router = APIRouter(prefix="/live", tags=["console"])

#: How far back each poll looks for commits that landed late.
OVERLAP = timedelta(seconds=5)
#: Most cases one message carries; more changes in one poll make a ``reset``.
BATCH = 200
#: A comment line this often keeps proxies from closing a quiet stream.
KEEPALIVE_S = 15.0
#: A stream ends after this long; the browser reconnects with its cursor and misses nothing.
MAX_STREAM_S = 30.0
#: How long a stopping HTTP server waits for open responses (uvicorn's
#: ``timeout_graceful_shutdown``) before it cuts them; live streams end sooner when the server
#: says it stops (:func:`end_live_streams`, called by ``server.web.serving.HttpServer``).
SHUTDOWN_GRACE_S = 5
#: Tells the browser how soon to reconnect (milliseconds).
RETRY_MS = 1500

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


@router.get(
    "/cases",
    summary="Live stream (SSE) of new and changed cases",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events."}},
)
async def live_cases(
    request: Request,
    credentials: Credentials,
    since: Annotated[
        datetime | None, Query(description="Changes after this time (default: from now on).")
    ] = None,
    timeout: Annotated[
        float, Query(ge=0, le=MAX_STREAM_S, description="Close the stream after this many seconds.")
    ] = MAX_STREAM_S,
) -> StreamingResponse:
    # The caller is checked with a short session of its own: a stream must not hold a database
    # session (and on SQLite a read snapshot) open for minutes.
    start = _parse_cursor(request.headers.get("last-event-id")) or as_utc(since)
    cursor, seen = await anyio.to_thread.run_sync(_authorize_and_start, request, credentials, start)
    return StreamingResponse(
        _stream(request, credentials, cursor, seen, timeout),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def end_live_streams(app: Any) -> None:
    """Ask every open stream of ``app`` to end within one poll (the server is stopping)."""
    stopping = getattr(app.state, "live_stopping", None) if hasattr(app, "state") else None
    if stopping is not None:
        stopping.set()


def _authorize_and_start(
    request: Request, credentials: HTTPAuthorizationCredentials | None, start: datetime | None
) -> tuple[datetime, dict[int, datetime]]:
    """The cursor to start from, and the changes before it the client already has.

    A fresh stream starts at the newest change and counts what lies in the look-back window as
    sent (the page loads its list after ``ready``); a resumed one (Last-Event-ID) counts nothing
    as sent, so a late commit just before its cursor still reaches it.
    """
    with request.app.state.read_sessions() as session:
        check_role(current_principal(request, session, credentials), Role.viewer)
        if start is not None:
            return start, {}
        latest = session.scalar(select(func.max(Case.updated_at)))
        if latest is None:
            return datetime.now(timezone.utc), {}
        recent = session.execute(select(Case.id, Case.updated_at).where(Case.updated_at > latest - OVERLAP))
        return latest, {case_id: at for case_id, at in recent}


async def _stream(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    cursor: datetime,
    sent: dict[int, datetime],
    timeout: float,
) -> AsyncIterator[str]:
    poll_s: float = request.app.state.settings.console.live_poll_s
    yield f"retry: {RETRY_MS}\n" + _message("ready", {"cursor": cursor.isoformat()}, cursor)
    started = last_write = time.monotonic()
    stopping: threading.Event = request.app.state.live_stopping
    while time.monotonic() - started + poll_s <= timeout:
        await anyio.sleep(poll_s)
        if stopping.is_set() or await request.is_disconnected():
            return
        try:
            rows = await anyio.to_thread.run_sync(_poll, request, credentials, cursor)
        except HTTPException:
            yield _message("signed-out", {}, cursor)
            return
        if len(rows) >= BATCH:
            cursor = max(r.updated_at for r in rows)
            sent.clear()
            yield _message("reset", {}, cursor)
            last_write = time.monotonic()
            continue
        fresh = [r for r in rows if sent.get(r.id) != r.updated_at]
        if fresh:
            cursor = max(cursor, *(r.updated_at for r in fresh))
            sent.update((r.id, r.updated_at) for r in fresh)
            horizon = cursor - OVERLAP
            sent = {k: v for k, v in sent.items() if v > horizon}
            yield _message("cases", {"cases": [r.model_dump(mode="json") for r in fresh]}, cursor)
            last_write = time.monotonic()
        elif time.monotonic() - last_write >= KEEPALIVE_S:
            yield ": keepalive\n\n"
            last_write = time.monotonic()


def _poll(
    request: Request, credentials: HTTPAuthorizationCredentials | None, cursor: datetime
) -> list[CasePublic]:
    """Cases changed since shortly before ``cursor``; raises HTTPException once the caller is refused."""
    with request.app.state.read_sessions() as session:
        check_role(current_principal(request, session, credentials), Role.viewer)
        return _changed_since(session, cursor - OVERLAP, EvidenceLinks(request))


def _changed_since(session: Session, after: datetime, links: EvidenceLinks) -> list[CasePublic]:
    rows = session.scalars(
        select(Case)
        # A sighting waiting for a second pass reaches the page when it becomes a case (``new``).
        .where(Case.updated_at > after, Case.state.not_in(sorted(HELD_STATES)))
        .order_by(Case.updated_at, Case.id)
        .limit(BATCH)
    ).all()
    # The same items GET /cases lists (thumbnail, overdue, detector class), so the page draws both alike.
    return case_rows(session, rows, links, datetime.now(timezone.utc))


def _message(event: str, data: object, cursor: datetime) -> str:
    return f"id: {cursor.isoformat()}\nevent: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def _parse_cursor(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value))
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"Last-Event-ID {value!r} is not a stream cursor"
        ) from None

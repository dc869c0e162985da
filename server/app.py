"""The HTTP side of the server: REST API, Open311, /metrics, OpenAPI.

    app = create_app(load_settings("server.yaml"))
    uvicorn.run(app)

Nothing happens at import time and no settings are global: each app holds its
own engine, session factory and evidence store in ``app.state``, so tests can
run several apps on different databases side by side.

Every error answer is JSON: ``{"detail": "<what was wrong>"}`` (validation
errors keep FastAPI's list of field problems under ``detail``), and Open311
routes answer with GeoReport's ``[{"code": ..., "description": ...}]``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker
from starlette.exceptions import HTTPException

from server.api import (
    bulk,
    case_export,
    cases,
    devices,
    events,
    evidence,
    fleet,
    label_stats,
    labels,
    metrics,
    open311,
    options,
    reviews,
    sign_stats,
    stats,
    users,
    viewing,
)
from server.api import signs as signs_api
from server.api import teams as teams_api
from server.api.links import API_PREFIX
from server.api.query import QueryError
from server.db.session import make_engine, read_session_factory, session_factory
from server.evidence_store import EvidenceStore
from server.http_guards import RefusalCounter, RequestGuard, install_access_log_redaction
from server.login_throttle import LoginThrottle
from server.settings import ServerSettings
from server.token_usage import FLUSH_S, TokenUsage
from server.web import api_docs, console
from streetwatch import __version__
from streetwatch.taxonomy import load_taxonomy

log = logging.getLogger(__name__)


def create_app(settings: ServerSettings) -> FastAPI:
    """A ready-to-serve app for ``settings``; the database must already be migrated."""
    engine = make_engine(settings.database_url)

    usage = TokenUsage()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        writer = asyncio.create_task(_write_token_usage(usage, app.state.sessions))
        try:
            yield
        finally:
            writer.cancel()
            await anyio.to_thread.run_sync(usage.flush, app.state.sessions)  # the last minute too
            engine.dispose()

    app = FastAPI(
        title="StreetWatch",
        version=__version__,
        description="Street-violation cases merged from edge-box events: review, dispatch, Open311, metrics. "
        "Send `Authorization: Bearer <token>`; roles are viewer < reviewer < admin, and device "
        "credentials are refused by every dispatcher endpoint.",
        lifespan=lifespan,
        # /docs is served from files shipped with the server (server/web/api_docs.py): FastAPI's
        # own page and ReDoc load from a CDN, which an offline intranet cannot reach.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.token_usage = usage  # when each token was last used (the Users page)
    app.state.engine = engine
    app.state.sessions = session_factory(engine)
    app.state.read_sessions = read_session_factory(engine)
    app.state.evidence_store = EvidenceStore(settings.evidence_dir)
    # The class names a reviewer may give as a label: a typo must not become training data.
    # Also the review attributes each violation type defines (truck load, vending setup).
    app.state.taxonomy = load_taxonomy(settings.taxonomy)
    app.state.label_names = frozenset(app.state.taxonomy.class_names())
    # Refused requests by reason (/metrics), sign-in throttling, and the limits every request meets.
    app.state.refusals = RefusalCounter()
    app.state.login_throttle = LoginThrottle(
        settings.api.login_failures_per_user,
        settings.api.login_attempts_per_address,
        settings.api.login_window_s,
    )
    app.add_middleware(
        RequestGuard,
        max_body_bytes=settings.api.max_body_bytes,
        max_upload_bytes=settings.api.max_upload_bytes,
        refusals=app.state.refusals,
        open311_prefix=open311.PREFIX,
    )
    install_access_log_redaction()

    api = APIRouter(prefix=API_PREFIX)
    # case_export before cases: /cases/export must not be read as a case id.
    routers = (
        devices,
        events,
        case_export,
        cases,
        reviews,
        bulk,
        labels,
        evidence,
        options,
        stats,
        users,
        fleet,
    )
    for module in routers:
        api.include_router(module.router)
    api.include_router(signs_api.router)
    api.include_router(sign_stats.router)
    api.include_router(label_stats.router)
    api.include_router(teams_api.router)
    api.include_router(viewing.router)
    app.include_router(api)
    app.include_router(open311.build_router())
    app.include_router(metrics.build_router())
    console.install(app)
    api_docs.install(app)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    _install_error_handlers(app)
    return app


#: Refusals counted for /metrics by the status they answer with (413 is counted by RequestGuard).
_REFUSAL_BY_STATUS = {
    status.HTTP_401_UNAUTHORIZED: "unauthorized",
    status.HTTP_403_FORBIDDEN: "forbidden",
    status.HTTP_422_UNPROCESSABLE_CONTENT: "invalid_request",
    status.HTTP_429_TOO_MANY_REQUESTS: "login_throttled",
}


def _install_error_handlers(app: FastAPI) -> None:
    def answer(
        request: Request, code: int, detail: object, headers: dict[str, str] | None = None
    ) -> JSONResponse:
        if request.url.path.startswith(open311.PREFIX):
            body: object = [{"code": code, "description": detail if isinstance(detail, str) else str(detail)}]
        else:
            body = {"detail": detail}
        return JSONResponse(body, status_code=code, headers=headers)

    refusals: RefusalCounter = app.state.refusals

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        reason = _REFUSAL_BY_STATUS.get(exc.status_code)
        if reason == "unauthorized" and request.url.path == f"{API_PREFIX}/auth/token":
            reason = "login_failed"
        if reason is not None:
            refusals.count(reason)
        return answer(request, exc.status_code, exc.detail, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(QueryError)
    async def query_error(request: Request, exc: QueryError) -> JSONResponse:
        refusals.count("invalid_request")
        return answer(request, status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # The last line of defence behind the parameter checks: a value the database cannot hold
        # or compare (an id beyond its integer range, a time beyond year 9999) is the request's
        # fault, so it is a 422 naming no internals, not a 500 with a traceback.
        cause = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]  # no SQL, no parameters
        log.warning(
            "refused %s %s: a value out of the database's range (%s)", request.method, request.url.path, cause
        )
        refusals.count("invalid_request")
        return answer(
            request,
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "a path or query value is out of the range this server can store or compare "
            "(ids up to 2147483647, times in the years 1..9999)",
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        refusals.count("invalid_request")
        problems = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
            for err in exc.errors()
        ]
        if request.url.path.startswith(open311.PREFIX):
            text = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in problems)
            return answer(request, status.HTTP_400_BAD_REQUEST, text)
        return answer(request, status.HTTP_422_UNPROCESSABLE_CONTENT, problems)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return answer(
            request, status.HTTP_500_INTERNAL_SERVER_ERROR, "internal server error; see the server log"
        )


async def _write_token_usage(usage: TokenUsage, sessions: sessionmaker[Session]) -> None:
    """Every FLUSH_S, write when the tokens used meanwhile were last used (in a thread: it blocks)."""
    while True:
        await asyncio.sleep(FLUSH_S)
        await anyio.to_thread.run_sync(usage.flush, sessions)

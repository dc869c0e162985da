"""Request dependencies: a database session, the caller, and role checks.

Route modules declare what they need with the ``Annotated`` aliases below::

    def list_cases(session: SessionDep, caller: ViewerDep) -> ...

Errors: no or malformed ``Authorization`` header, or an unknown / revoked
token -> 401 with ``WWW-Authenticate: Bearer``; a valid token whose role is too
low (or a device token on a dispatcher endpoint) -> 403 naming the role needed.

Without the header, the console's session cookie (:mod:`server.web.cookie`) is the token; a
request that changes something with it must also carry the page's CSRF header (else 403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session, sessionmaker

from server.api.query import QueryError
from server.auth import Principal, Role, authenticate_password, authenticate_token, role_allows
from server.db.models import User
from server.login_throttle import LoginThrottle
from server.token_usage import TokenUsage
from server.web.cookie import check_csrf, session_token

#: Shown in the OpenAPI page as the "Authorize" button; errors are raised by us, not by it.
bearer_scheme = HTTPBearer(
    auto_error=False, description="A token from `streetwatch user create` or POST /users."
)


def get_db(request: Request) -> Iterator[Session]:
    """One session per request, closed afterwards; routes commit what they change.

    GET and HEAD requests only read: they get a read session, which on SQLite does not wait
    for the write lock an ingest batch holds.
    """
    state = request.app.state
    reads_only = request.method in ("GET", "HEAD")
    sessions: sessionmaker[Session] = state.read_sessions if reads_only else state.sessions
    with sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_db)]


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"})


def sign_in_user(request: Request, session: Session, username: str, password: str) -> User:
    """The user these credentials name, through the sign-in throttle; 429 or 401 otherwise.

    One path for ``POST /auth/token`` and the console's sign-in, so neither is a side door for
    guessing passwords. The throttle is asked first, by name whether or not the user exists: a
    429 reveals nothing.
    """
    throttle: LoginThrottle = request.app.state.login_throttle
    address = request.client.host if request.client else "unknown"
    refused = throttle.retry_after(session, username, address)
    if refused is not None:
        wait, which = refused
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"too many sign-in attempts for this {'user name' if which == 'user' else 'address'}; "
            f"try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    user = authenticate_password(session, username, password)
    throttle.record(session, username, address, succeeded=user is not None)
    session.commit()  # the attempt counts whatever follows: a 401 or 403 ends the request without a commit
    if user is None:
        raise unauthorized("wrong username or password")
    return user


def principal_for_token(session: Session, token: str | None) -> Principal:
    """The caller behind ``token``, or a 401 that says what was wrong."""
    if not token:
        raise unauthorized("missing credentials: send the header 'Authorization: Bearer <token>'")
    principal = authenticate_token(session, token)
    if principal is None:
        raise unauthorized("invalid, expired, revoked or disabled token")
    return principal


def current_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    if credentials is None:
        # The browser console's session cookie; its writes must carry the CSRF header.
        cookie = session_token(request)
        if cookie:
            principal = principal_for_token(session, cookie)
            check_csrf(request, cookie)
            return noted_use(request, principal)
    return noted_use(request, principal_for_token(session, credentials.credentials if credentials else None))


def noted_use(request: Request, principal: Principal) -> Principal:
    """``principal``, its token's use noted for the Users page (``server.token_usage``)."""
    usage: TokenUsage | None = getattr(request.app.state, "token_usage", None)
    if usage is not None:
        usage.note(principal.token_id, utcnow())
    return principal


CallerDep = Annotated[Principal, Depends(current_principal)]


def check_role(principal: Principal, required: Role) -> Principal:
    """``principal`` when its role allows ``required``; else a 403 naming both roles."""
    if role_allows(principal.role, required):
        return principal
    if principal.role is Role.device:
        message = "device credentials cannot call dispatcher endpoints"
    else:
        message = (
            f"this endpoint needs the {required.value} role or higher; "
            f"your token's role is {principal.role.value}"
        )
    raise HTTPException(status.HTTP_403_FORBIDDEN, detail=message)


def require(required: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only callers whose role allows ``required`` through."""

    def dependency(principal: CallerDep) -> Principal:
        return check_role(principal, required)

    return dependency


ViewerDep = Annotated[Principal, Depends(require(Role.viewer))]
ReviewerDep = Annotated[Principal, Depends(require(Role.reviewer))]
AdminDep = Annotated[Principal, Depends(require(Role.admin))]


def as_utc(value: datetime | None) -> datetime | None:
    """Query-string times without a zone are taken as UTC (the API speaks UTC throughout).

    A time that leaves the years 1..9999 once moved to UTC (``0001-01-01T00:00:00+14:00``)
    is a :class:`QueryError` (422), not an OverflowError deep in a query.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise QueryError(
            "time", f"{value.isoformat()} falls outside the years 1..9999 once converted to UTC"
        ) from None


def utcnow() -> datetime:
    return datetime.now(timezone.utc)

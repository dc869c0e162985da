"""``/users``: who may call the API (admins make users), and signing in for a token."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import func, select

from server.api.deps import AdminDep, CallerDep, SessionDep, sign_in_user, unauthorized, utcnow
from server.api.query import DEFAULT_LIMIT, MAX_LIMIT
from server.api.schemas.common import Page
from server.api.schemas.users import LoginRequest, TokenPublic, UserCreate, UserCreated, UserPublic
from server.auth import UserExistsError, create_user, issue_token
from server.db.models import User
from server.settings import ServerSettings

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    response_model=UserCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a user (admin)",
    description="Makes the user and a first token. The token is in this answer only; store it now.",
)
def create_user_route(body: UserCreate, session: SessionDep, _caller: AdminDep) -> UserCreated:
    try:
        issued = create_user(session, body.username, body.role, utcnow(), password=body.password)
    except UserExistsError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from None
    session.commit()
    user = session.get(User, issued.user_id)
    assert user is not None  # just committed
    return UserCreated(user=UserPublic.model_validate(user), token=TokenPublic(token=issued.token))


@router.get("/users", response_model=Page[UserPublic], summary="List users (admin)")
def list_users(
    session: SessionDep,
    _caller: AdminDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
) -> Page[UserPublic]:
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).limit(limit).offset(offset)).all()
    return Page[UserPublic](
        items=[UserPublic.model_validate(u) for u in rows], total=total, limit=limit, offset=offset
    )


@router.get("/users/me", response_model=UserPublic, summary="Who am I")
def read_me(session: SessionDep, caller: CallerDep) -> UserPublic:
    """Any valid token, device tokens included: a box may check its credential."""
    user = session.get(User, caller.user_id)
    if user is None:  # deleted between the token check and now
        raise unauthorized("the user of this token no longer exists")
    return UserPublic.model_validate(user)


@router.post(
    "/auth/token",
    response_model=TokenPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Sign in: exchange a username and password for a new token",
    description="The token expires after api.token_lifetime_h hours (expires_at). Failed attempts are "
    "throttled per user name and per client address: 429 with Retry-After.",
    responses={429: {"description": "Too many attempts; retry after the Retry-After header's seconds."}},
)
def login(request: Request, body: LoginRequest, session: SessionDep) -> TokenPublic:
    settings: ServerSettings = request.app.state.settings
    user = sign_in_user(request, session, body.username, body.password)
    now = utcnow()
    expires_at = now + timedelta(hours=settings.api.token_lifetime_h)
    issued = issue_token(session, user, now, name="sign-in", expires_at=expires_at)
    session.commit()
    return TokenPublic(token=issued.token, expires_at=issued.expires_at)

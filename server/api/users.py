"""``/users``: who may call the API (admins make users), and signing in for a token."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.api.deps import AdminDep, CallerDep, SessionDep, sign_in_user, unauthorized, utcnow
from server.api.query import DEFAULT_LIMIT, MAX_LIMIT
from server.api.schemas.common import Page
from server.api.schemas.users import (
    LoginRequest,
    TokenPublic,
    UserCreate,
    UserCreated,
    UserPublic,
    UserUpdate,
)
from server.auth import (
    API_SIGN_IN_TOKEN,
    PasswordError,
    Principal,
    Role,
    UserExistsError,
    create_user,
    issue_token,
    set_password,
)
from server.db.models import ApiToken, User
from server.settings import ServerSettings

log = logging.getLogger(__name__)

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
    return UserCreated(user=_public(session, [user])[0], token=TokenPublic(token=issued.token))


@router.get("/users", response_model=Page[UserPublic], summary="List users (admin)")
def list_users(
    request: Request,
    session: SessionDep,
    _caller: AdminDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
) -> Page[UserPublic]:
    # This worker's uses noted since its last write, written now (in their own short transaction):
    # the admin's own row, at least, is not a minute behind.
    request.app.state.token_usage.flush(request.app.state.sessions)
    session.rollback()  # read on in a new transaction, one that sees that write (SQLite's snapshot)
    total = session.scalar(select(func.count()).select_from(User)) or 0
    rows = session.scalars(select(User).order_by(User.id).limit(limit).offset(offset)).all()
    return Page[UserPublic](items=_public(session, rows), total=total, limit=limit, offset=offset)


@router.get("/users/me", response_model=UserPublic, summary="Who am I")
def read_me(session: SessionDep, caller: CallerDep) -> UserPublic:
    """Any valid token, device tokens included: a box may check its credential."""
    user = session.get(User, caller.user_id)
    if user is None:  # deleted between the token check and now
        raise unauthorized("the user of this token no longer exists")
    return _public(session, [user])[0]


@router.patch(
    "/users/{user_id}",
    response_model=UserPublic,
    summary="Disable, enable, change the role of or set a password for a user (admin)",
    description="A disabled user's every request is refused, whatever token it holds, until enabled "
    "again. Refused with 409: changing your own role or disabling yourself (another admin can), and "
    "anything that would leave no active admin. A box's account (role device) stays a box's account "
    "and has no password.",
    responses={
        404: {"description": "No such user."},
        409: {"description": "The change would lock admins out."},
    },
)
def update_user(user_id: int, body: UserUpdate, session: SessionDep, caller: AdminDep) -> UserPublic:
    user = session.get(User, user_id)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user {user_id}")
    _check_update(session, user, body, caller)
    changed = []
    if body.disabled is not None and body.disabled != user.disabled:
        user.disabled = body.disabled
        changed.append("disabled" if body.disabled else "enabled")
    if body.role is not None and body.role.value != user.role:
        changed.append(f"role {user.role} -> {body.role.value}")
        user.role = body.role.value
    if body.password is not None:
        try:
            revoked = set_password(session, user, body.password)
        except PasswordError as exc:  # nothing is committed
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
        changed.append(f"password set, {revoked} sign-in token(s) revoked")
    session.commit()
    if changed:
        log.info("user %s (%d): %s, by %s", user.username, user.id, ", ".join(changed), caller.username)
    return _public(session, [user])[0]


def _public(session: Session, users: Sequence[User]) -> list[UserPublic]:
    """``users`` as the API shows them, each with when any of its tokens was last used."""
    ids = [u.id for u in users]
    rows = session.execute(
        select(ApiToken.user_id, func.max(ApiToken.last_used_at))
        .where(ApiToken.user_id.in_(ids))
        .group_by(ApiToken.user_id)
    )
    last = {user_id: at for user_id, at in rows}
    return [UserPublic.model_validate(u).model_copy(update={"last_active_at": last.get(u.id)}) for u in users]


def _check_update(session: Session, user: User, body: UserUpdate, caller: Principal) -> None:
    """Refuse what a box's account cannot be, and what would leave nobody to run the server."""
    new_role = body.role.value if body.role is not None else user.role
    if new_role != user.role and Role.device.value in (user.role, new_role):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail="a box's account (role device) stays a box's, and a person's stays a person's: "
            "make a new user instead",
        )
    demoted = body.role is not None and body.role is not Role.admin
    if user.id == caller.user_id and (body.disabled or demoted):
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="you cannot disable yourself or give up your own admin role; another admin can",
        )
    if user.role == Role.admin.value and not user.disabled and (body.disabled or demoted):
        # Locked (PostgreSQL): two admins disabling each other at once must not both get through;
        # the second one waits, then counts without the first one's target.
        active = select(User.id).where(User.role == Role.admin.value, User.disabled.is_(False))
        if len(session.scalars(active.with_for_update()).all()) <= 1:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=f"{user.username} is the last active admin")


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
    issued = issue_token(session, user, now, name=API_SIGN_IN_TOKEN, expires_at=expires_at)
    session.commit()
    return TokenPublic(token=issued.token, expires_at=issued.expires_at)

"""``/session``: the console's sign-in (a cookie) and sign-out (the token is revoked).

=======================  =========  ==================================================
route                    needs      what
=======================  =========  ==================================================
POST   /session          password   sign in: sets the HttpOnly session cookie; answers
                                    the user and the CSRF value the page sends on writes
GET    /session          public     who is signed in (null: nobody), with the CSRF value
DELETE /session          any/none   sign out: revokes the session's token, clears the cookie
=======================  =========  ==================================================

Device credentials cannot sign in: the console is for people.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from sqlalchemy import update

from server.api.deps import SessionDep, bearer_scheme, check_role, current_principal, sign_in_user, utcnow
from server.api.schemas.users import LoginRequest, UserPublic
from server.auth import CONSOLE_SIGN_IN_TOKEN, Role, authenticate_token, issue_token
from server.db.models import ApiToken, User
from server.web.cookie import SESSION_COOKIE, check_csrf, csrf_token, session_token

router = APIRouter(prefix="/session", tags=["console"])

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]

#: The name sign-in tokens carry in ``streetwatch user`` listings.
TOKEN_NAME = CONSOLE_SIGN_IN_TOKEN


class SessionPublic(BaseModel):
    user: UserPublic | None = Field(description="Who is signed in; null: nobody (show the sign-in).")
    csrf_token: str | None = Field(
        description="Send as the X-StreetWatch-CSRF header with every request that changes something;"
        " null when the caller used a bearer token instead of the console's cookie."
    )


@router.post(
    "",
    response_model=SessionPublic,
    summary="Console sign-in: username + password -> a session cookie",
    responses={
        401: {"description": "Wrong username or password."},
        403: {"description": "A device's credentials."},
        429: {"description": "Too many attempts; retry after the Retry-After header's seconds."},
    },
)
def sign_in(request: Request, response: Response, body: LoginRequest, session: SessionDep) -> SessionPublic:
    user = sign_in_user(request, session, body.username, body.password)  # throttled like /auth/token
    if user.role == Role.device.value:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail="device credentials cannot sign in to the console"
        )
    settings = request.app.state.settings.console
    now = utcnow()
    # The token ends with the shift on the server too, whatever the browser does with the cookie.
    expires_at = now + timedelta(hours=settings.session_hours)
    issued = issue_token(session, user, now, name=TOKEN_NAME, expires_at=expires_at)
    session.commit()
    response.set_cookie(
        SESSION_COOKIE,
        issued.token,
        max_age=int(settings.session_hours * 3600),
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
    )
    return SessionPublic(user=UserPublic.model_validate(user), csrf_token=csrf_token(issued.token))


@router.get(
    "",
    response_model=SessionPublic,
    summary="Who is signed in on this browser (user null when nobody is), with the CSRF value",
)
def read_session(request: Request, session: SessionDep, credentials: Credentials) -> SessionPublic:
    # Answers 200 either way: the page asks this before anyone signed in, and "nobody" is a
    # normal answer there, not an error for the browser's log.
    try:
        principal = check_role(current_principal(request, session, credentials), Role.viewer)
    except HTTPException:
        return SessionPublic(user=None, csrf_token=None)
    user = session.get(User, principal.user_id)
    if user is None:
        return SessionPublic(user=None, csrf_token=None)
    token = session_token(request)
    csrf = csrf_token(token) if token and credentials is None else None
    return SessionPublic(user=UserPublic.model_validate(user), csrf_token=csrf)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Console sign-out: the session's token stops working everywhere",
)
def sign_out(request: Request, session: SessionDep) -> Response:
    token = session_token(request)
    if token is not None:
        principal = authenticate_token(session, token)
        if principal is not None:
            # Only the page itself may end its session: a cross-site request cannot send the header.
            check_csrf(request, token)
            session.execute(update(ApiToken).where(ApiToken.id == principal.token_id).values(revoked=True))
            session.commit()
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    settings = request.app.state.settings.console
    answer.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=settings.cookie_secure
    )
    return answer

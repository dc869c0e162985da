"""The console's session cookie and its CSRF check, shared by ``server.api.deps`` and the routes.

The browser console signs in once and then rides on an HttpOnly cookie that holds an ordinary
API token (made by :func:`server.auth.issue_token`, so revoking, disabling and expiry work the
same as for bearer tokens; a console sign-in expires after ``console.session_hours``). A cookie
is sent by the browser on its own, so a request that changes something must also prove it
comes from the console page: it carries the header ``X-StreetWatch-CSRF`` with a value derived
from the token. A page on another site can neither read that value (the cookie is HttpOnly and
the session answer is same-origin) nor make a cross-site form send a custom header;
SameSite=Strict keeps the cookie off cross-site requests on top of that.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import HTTPException, Request, status

#: Name of the cookie that holds the console's token.
SESSION_COOKIE = "streetwatch_session"
#: Header a cookie-authenticated write must carry (see :func:`csrf_token`).
CSRF_HEADER = "X-StreetWatch-CSRF"
#: Methods that only read; every other method needs the CSRF header when the cookie authenticates.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def csrf_token(session_token: str) -> str:
    """The CSRF value for a session: derived, so the server stores nothing extra."""
    return hashlib.sha256(b"streetwatch-csrf\x00" + session_token.encode("utf-8")).hexdigest()


def session_token(request: Request) -> str | None:
    """The token in the console's cookie, if the request carries one."""
    return request.cookies.get(SESSION_COOKIE) or None


def check_csrf(request: Request, token: str) -> None:
    """403 when a write authenticated by the cookie lacks the page's CSRF header."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode("utf-8"), csrf_token(token).encode("utf-8")):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"a signed-in browser must send the {CSRF_HEADER} header the console received at "
            "sign-in with every change; reload the console",
        )

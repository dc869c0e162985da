"""Sign-in throttling: failed passwords per username, attempts per client address.

    throttle = LoginThrottle(failures_per_user=5, attempts_per_address=30, window_s=300)
    wait = throttle.retry_after(session, username, address)   # (seconds to wait, which limit), or None
    ...
    throttle.record(session, username, address, succeeded=False)
    session.commit()   # the caller's transaction: a failed sign-in's count must outlive its 401

Both limits are sliding windows: a key is refused while it has used up its limit within the
last ``window_s`` seconds, and ``retry_after`` says when the oldest counted attempt leaves the
window. The username limit counts failures only (a user who signs in often is not locked
out) and applies whether or not the name exists, so a 429 tells nothing about accounts. The
address limit counts every attempt, so one address cannot spray many names.

The counts live in the database (``login_attempts``), so every API process behind one port,
and a restarted one, throttles the same attempts: N processes do not give an address N times
the limit. The throttle works in the sign-in request's own session (SQLite lets one writer in
at a time: a second connection of the same request would wait on the first). A row holds a
SHA-256 of the key and the time, no name; rows leave once out of the window, so the table holds
at most the attempts of one window. Two processes asked at the same instant may both let through
the attempt that fills a limit; the next one is refused. Behind a
reverse proxy, run uvicorn with ``--proxy-headers`` and ``--forwarded-allow-ips`` so the address
is the client's, not the proxy's.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from server.db.models import LoginAttempt


def _key(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class LoginThrottle:
    def __init__(
        self,
        failures_per_user: int,
        attempts_per_address: int,
        window_s: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._limits = {"user": failures_per_user, "address": attempts_per_address}
        self._window = timedelta(seconds=window_s)
        self._clock = clock

    def retry_after(self, session: Session, username: str, address: str) -> tuple[int, str] | None:
        """``(seconds, which limit)`` when this attempt must be refused, else None."""
        now = self._clock()
        waits: dict[str, float] = {}
        for kind, value in (("user", username), ("address", address)):
            limit = self._limits[kind]
            newest = session.scalars(
                select(LoginAttempt.at)
                .where(LoginAttempt.key == _key(kind, value), LoginAttempt.at > now - self._window)
                .order_by(LoginAttempt.at.desc())
                .limit(limit)
            ).all()
            if len(newest) >= limit:  # room again when the limit-th newest leaves the window
                waits[kind] = (newest[-1] + self._window - now).total_seconds()
        if not waits:
            return None
        which = max(waits, key=lambda kind: (waits[kind], kind == "user"))  # the longer wait decides
        return max(1, math.ceil(waits[which])), which

    def record(self, session: Session, username: str, address: str, succeeded: bool) -> None:
        """Count one attempt that was let through (refused ones are not counted again), in
        ``session``'s transaction: the caller commits."""
        now = self._clock()
        rows = [{"key": _key("address", address), "at": now}]
        if not succeeded:
            rows.append({"key": _key("user", username), "at": now})
        session.execute(insert(LoginAttempt), rows)
        session.execute(delete(LoginAttempt).where(LoginAttempt.at <= now - self._window))

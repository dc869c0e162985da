"""When each API token was last used, for the admin's Users page (``api_tokens.last_used_at``).

Writing the time on every request would turn every read into a write: on SQLite each GET would
queue behind the ingest's write lock. Instead each worker keeps the latest use of each token in
memory and writes them in one short transaction every :data:`FLUSH_S` seconds (and when it stops).
A time only ever moves forward, so workers flushing in any order agree; a flush that fails (the
database busy or gone) keeps its times for the next one.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import ApiToken

log = logging.getLogger(__name__)

#: Seconds between writes of the times noted; the Users page is at most this far behind.
FLUSH_S = 60.0


class TokenUsage:
    """The latest use of each token seen by this worker and not written yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[int, datetime] = {}

    def note(self, token_id: int, at: datetime) -> None:
        with self._lock:
            known = self._pending.get(token_id)
            if known is None or at > known:
                self._pending[token_id] = at

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self, sessions: sessionmaker[Session]) -> int:
        """Write the noted times (never moving one back); how many tokens were written."""
        with self._lock:
            taken, self._pending = self._pending, {}
        if not taken:
            return 0
        try:
            with sessions.begin() as session:
                for token_id, at in taken.items():
                    session.execute(
                        update(ApiToken)
                        .where(
                            ApiToken.id == token_id,
                            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < at),
                        )
                        .values(last_used_at=at)
                    )
        except SQLAlchemyError as exc:
            log.warning(
                "could not record when %d token(s) were last used (%s); trying again later", len(taken), exc
            )
            for token_id, at in taken.items():
                self.note(token_id, at)
            return 0
        return len(taken)

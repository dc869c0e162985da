"""Each ingest worker notes in ``ingest_workers`` that it is alive, and whether it is connected.

A worker that stops keeps its persistent session at the broker, and the shared subscription
goes on routing that worker's share of new messages into it: they wait there, unstored,
until the worker returns (or are lost when the session expires). ``/metrics`` turns these
rows into ``streetwatch_ingest_worker_last_seen_seconds`` and
``streetwatch_ingest_worker_connected`` so an operator is alerted while that share builds up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import IngestWorker as IngestWorkerRow

log = logging.getLogger(__name__)

#: Seconds between heartbeats; the documented alert fires after several are missed.
HEARTBEAT_S = 10.0
#: A worker not heard from for this long is down (the threshold of the documented alert).
DOWN_AFTER_S = 60.0


@dataclass(frozen=True, slots=True)
class WorkerState:
    """What the last heartbeat of one worker said, seen at ``now``."""

    client_id: str
    started_at: datetime
    last_seen_at: datetime
    connected: bool
    seconds_since: float

    @property
    def down(self) -> bool:
        return not self.connected or self.seconds_since > DOWN_AFTER_S

    def describe(self) -> str:
        ago = _duration(self.seconds_since)
        if not self.down:
            return f"{self.client_id}: up, connected, last seen {ago} ago"
        why = "not connected to the broker" if self.seconds_since <= DOWN_AFTER_S else "silent"
        return (
            f"{self.client_id}: DOWN ({why}), last seen {ago} ago: its share of messages queues in its "
            "broker session until it is started again with this client id"
        )


def workers(session: Session, now: datetime) -> list[WorkerState]:
    """Every worker that ever heartbeat, by client id."""
    rows = session.scalars(select(IngestWorkerRow).order_by(IngestWorkerRow.client_id))
    return [
        WorkerState(
            r.client_id,
            r.started_at,
            r.last_seen_at,
            r.connected,
            max(0.0, (now - r.last_seen_at).total_seconds()),
        )
        for r in rows
    ]


def forget(session: Session, client_id: str) -> bool:
    """Drop a retired worker's row (its gauges disappear); False if there was none."""
    result = session.execute(delete(IngestWorkerRow).where(IngestWorkerRow.client_id == client_id))
    return bool(getattr(result, "rowcount", 0))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def beat(
    sessions: sessionmaker[Session], client_id: str, started_at: datetime, now: datetime, connected: bool
) -> bool:
    """Record that ``client_id`` was alive at ``now``; False (and a log line) if the database said no."""
    try:
        with sessions.begin() as session:
            row = session.get(IngestWorkerRow, client_id)
            if row is None:
                session.add(
                    IngestWorkerRow(
                        client_id=client_id, started_at=started_at, last_seen_at=now, connected=connected
                    )
                )
            else:
                row.started_at = started_at
                row.last_seen_at = max(row.last_seen_at, now)
                row.connected = connected
    except DBAPIError as exc:
        log.warning("ingest worker %s: cannot record its heartbeat: %s", client_id, exc.orig or exc)
        return False
    return True

"""Each ingest worker notes in ``ingest_workers`` that it is alive, and whether it is connected.

A worker that stops keeps its persistent session at the broker, and the shared subscription
goes on routing that worker's share of new messages into it: they wait there, unstored,
until the worker returns (or are lost when the session expires). ``/metrics`` turns these
rows into ``streetwatch_ingest_worker_last_seen_seconds`` and
``streetwatch_ingest_worker_connected`` so an operator is alerted while that share builds up.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import IngestWorker as IngestWorkerRow

log = logging.getLogger(__name__)

#: Seconds between heartbeats; the documented alert fires after several are missed.
HEARTBEAT_S = 10.0


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

"""The outbox's SQLite file: schema, connection settings and the check made on open.

Durability choices (power loss, SIGKILL):

* ``journal_mode=WAL``: a commit appends to the write-ahead log; a crash at any point
  leaves either the old or the new state, never a torn page, and the publisher can
  read while the detection loop writes.
* The *writer* connection (``emit``) runs ``synchronous=FULL``: every commit fsyncs the
  WAL, so an event ``emit`` has returned for survives a power cut. With ``NORMAL`` a
  power cut could roll back the last commits, i.e. lose confirmed violations.
* The *publisher* connection runs ``synchronous=NORMAL``: it only deletes acknowledged
  rows; a power cut can at worst undo a few deletes, which re-sends those messages
  (the server ignores a repeated ``event_id``), and never corrupts the file. The next
  FULL commit of the writer fsyncs the whole WAL, deletes included.
* ``AUTOINCREMENT``: ids are never reused, even after the newest row is deleted, so
  id order is creation order across restarts and replay keeps it.
* Row and byte totals per kind live in ``totals``, kept by triggers inside the same
  transactions, so the size policy never scans the table.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT    NOT NULL CHECK (kind IN ('event', 'evidence')),
    topic      TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    size       INTEGER NOT NULL,
    created_at REAL    NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_kind ON messages (kind, id);
CREATE TABLE IF NOT EXISTS totals (
    kind  TEXT PRIMARY KEY,
    rows  INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (kind, rows, bytes) VALUES ('event', 0, 0), ('evidence', 0, 0);
CREATE TRIGGER IF NOT EXISTS messages_added AFTER INSERT ON messages BEGIN
    UPDATE totals SET rows = rows + 1, bytes = bytes + NEW.size WHERE kind = NEW.kind;
END;
CREATE TRIGGER IF NOT EXISTS messages_removed AFTER DELETE ON messages BEGIN
    UPDATE totals SET rows = rows - 1, bytes = bytes - OLD.size WHERE kind = OLD.kind;
END;
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""

#: How long a connection waits for the other one's write lock before giving up.
BUSY_TIMEOUT_S = 30.0


def connect(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """Open one connection in autocommit mode (transactions are explicit ``BEGIN IMMEDIATE``)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


def open_database(path: Path) -> sqlite3.Connection:
    """Open (or create) the outbox file for the writer; a corrupt file is set aside, not fatal.

    A file that fails ``PRAGMA quick_check`` cannot be trusted to replay in order; it is
    renamed to ``<name>.corrupt-<unix time>`` for inspection and a fresh outbox starts.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the outbox folder {path.parent}: {exc}") from exc
    try:
        conn = connect(path, synchronous="FULL")
        verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            conn.close()
            raise sqlite3.DatabaseError(f"quick_check says {verdict}")
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc):
            raise StorageError(f"cannot open the outbox {path}: {exc}") from exc
        aside = _set_aside(path)
        log.error("outbox %s is corrupt (%s); moved it to %s and starting an empty outbox", path, exc, aside)
        conn = connect(path, synchronous="FULL")
    try:
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        conn.close()
        raise StorageError(f"cannot create the outbox tables in {path}: {exc}") from exc
    return conn


def _set_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            part.rename(Path(str(aside) + suffix))
    return aside

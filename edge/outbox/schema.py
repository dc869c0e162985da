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
* ``secure_delete=OFF``: dropping an image must not rewrite every freed page (the
  default build zeroes them), or evicting images on a full disk would need the very
  space it is trying to free.

Schema versions (``PRAGMA user_version``): 0 is the first layout; 1 adds what
end-to-end delivery and a jump-proof age need (``key``, ``created_age``, the ``clock``
and ``delivery`` tables); 2 keeps each row's send state in ``sends``.
:func:`open_database` upgrades an older file in place: keys are read from the stored
payloads, and rows written before the upgrade start ageing at the upgrade.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from pathlib import Path

from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

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

#: Version 1: end-to-end acknowledgement and ageing by the outbox's own running clock.
#:
#: * ``key``: what the server's ``StoredAck`` names (an event's ``event_id``, an image's
#:   SHA-256); NULL for a row whose payload names neither (then the broker's PUBACK ends it).
#: * ``created_age``: the outbox clock (seconds this outbox has been open, carried across
#:   restarts in ``clock``) when the row was written. Age limits use it, never the wall
#:   clock, so an NTP/GPS correction cannot age rows.
SCHEMA_V1 = (
    "ALTER TABLE messages ADD COLUMN key TEXT",
    "ALTER TABLE messages ADD COLUMN created_age REAL NOT NULL DEFAULT 0",
    "CREATE INDEX IF NOT EXISTS messages_by_key ON messages (key) WHERE key IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS clock (name TEXT PRIMARY KEY, value REAL NOT NULL)",
    "INSERT OR IGNORE INTO clock (name, value) VALUES ('age_s', 0)",
    "CREATE TABLE IF NOT EXISTS delivery (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

#: Version 2: the send state of a row lives in its own small table, ``sends``, so that
#: recording a PUBACK or a re-send time never rewrites a row's payload (an image of
#: 150 kB would be copied on every send otherwise). No ``sends`` row: waiting for its
#: first send since the publisher started. ``due_at``: the publisher's monotonic time at
#: which it is sent again unless the server acknowledged it first. ``sent``: 1 once the
#: broker took it (PUBACK). ``attempts``: sends the broker took, for the re-send backoff.
SCHEMA_V2 = (
    """CREATE TABLE IF NOT EXISTS sends (
        id       INTEGER PRIMARY KEY,
        kind     TEXT    NOT NULL,
        due_at   REAL    NOT NULL,
        sent     INTEGER NOT NULL,
        attempts INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS sends_due ON sends (due_at, id)",
    "CREATE INDEX IF NOT EXISTS sends_sent ON sends (kind) WHERE sent = 1",
    """CREATE TRIGGER IF NOT EXISTS sends_follow_messages AFTER DELETE ON messages BEGIN
        DELETE FROM sends WHERE id = OLD.id;
    END""",
)

SCHEMA_VERSION = 2

#: How long a connection waits for the other one's write lock before giving up.
BUSY_TIMEOUT_S = 30.0


def connect(path: Path, *, synchronous: str) -> sqlite3.Connection:
    """Open one connection in autocommit mode (transactions are explicit ``BEGIN IMMEDIATE``)."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA secure_delete=OFF")  # per connection: see the module docstring
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
        _upgrade(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StorageError(f"cannot create the outbox tables in {path}: {exc}") from exc
    return conn


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring an older outbox file to :data:`SCHEMA_VERSION` in one transaction."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version >= SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    rows = []
    try:
        if version < 1:
            for statement in SCHEMA_V1:
                conn.execute(statement)
            rows = conn.execute("SELECT id, kind, topic, payload FROM messages").fetchall()
            conn.executemany(
                "UPDATE messages SET key = ? WHERE id = ?",
                [(message_key(kind, topic, payload), row_id) for row_id, kind, topic, payload in rows],
            )
        for statement in SCHEMA_V2:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    if rows:
        log.info("outbox upgraded to schema %d: %d queued message(s) kept", SCHEMA_VERSION, len(rows))


def message_key(kind: str, topic: str, payload: bytes) -> str | None:
    """What the server's acknowledgement calls a message: an event's id, an image's SHA-256."""
    if kind == "evidence":
        last = topic.rsplit("/", 1)[-1]
        return last if _SHA256.match(last) else None
    try:
        event_id = json.loads(payload).get("event_id")
    except (ValueError, AttributeError, RecursionError):
        return None
    return str(event_id).lower() if isinstance(event_id, str) and event_id else None


def _set_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        part = Path(str(path) + suffix)
        if part.exists():
            part.rename(Path(str(aside) + suffix))
    return aside

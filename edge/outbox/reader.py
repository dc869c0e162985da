"""The publisher thread's side of the outbox: what to send next, and what the acks changed.

A row's delivery state (``docs/mqtt.md``, "Delivery guarantees") lives in the ``sends``
table beside it, so recording it never rewrites the payload:

* no ``sends`` row: waiting for its first send since the publisher started; sent in id
  (commit) order.
* ``sends.due_at``: sent again at that time (the publisher's monotonic clock) unless the
  server acknowledges it first; ``sends.sent = 1`` once the broker took it (PUBACK).
* Only the server's ``StoredAck`` (by key) deletes a row; its ``sends`` row goes with it.

A publisher that starts (after a restart of the box) cannot trust ``due_at`` from the
previous process's clock, so :meth:`OutboxReader.restart_schedule` forgets every send
state: whatever the server has not acknowledged goes out again, in id order.

Writes from the publisher run ``synchronous=NORMAL`` (``edge.outbox.schema``): a power
cut can undo the last few, which at worst re-sends messages the server already has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.outbox.schema import connect
from streetwatch.errors import StorageError

Kind = Literal["event", "evidence"]


@dataclass(frozen=True)
class StoredMessage:
    """A message as the outbox holds it."""

    id: int
    kind: Kind
    topic: str
    payload: bytes
    created_at: float
    attempts: int
    key: str | None = None


_COLUMNS = "id, kind, topic, payload, created_at, attempts, key"

#: SQLite's default limit on bound parameters is far higher; this keeps statements small.
KEYS_PER_STATEMENT = 500


@dataclass
class Changes:
    """What the publisher learned since its last write, applied in one transaction."""

    broker_took: list[tuple[float, int]] = field(default_factory=list)  # (due_at, row id): PUBACK ok
    retry: list[tuple[float, int]] = field(default_factory=list)  # (due_at, row id): not delivered
    unacked_only: list[int] = field(default_factory=list)  # rows without a key: the PUBACK ends them
    stored_keys: list[str] = field(default_factory=list)  # named by the server's StoredAck
    resent: int = 0  # re-sends since the last write

    def __bool__(self) -> bool:
        return bool(self.broker_took or self.retry or self.unacked_only or self.stored_keys or self.resent)


class OutboxReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, synchronous="NORMAL")

    def restart_schedule(self) -> int:
        """A new publisher: every row waits for a (re-)send again; returns how many were sent before."""
        try:
            return int(self._conn.execute("DELETE FROM sends").rowcount)
        except sqlite3.Error as exc:
            raise StorageError(f"outbox {self.path}: cannot reset the send schedule: {exc}") from exc

    def after(self, last_id: int, limit: int) -> list[StoredMessage]:
        """The next ``limit`` rows waiting for their first send with an id above ``last_id``."""
        return self._select(
            "SELECT m.id, m.kind, m.topic, m.payload, m.created_at, 0, m.key FROM messages m "
            "WHERE m.id > ? AND NOT EXISTS (SELECT 1 FROM sends s WHERE s.id = m.id) ORDER BY m.id LIMIT ?",
            (last_id, limit),
        )

    def due(self, now: float, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` rows whose re-send time has come, the earliest first."""
        return self._select(
            "SELECT m.id, m.kind, m.topic, m.payload, m.created_at, s.attempts, m.key "
            "FROM sends s JOIN messages m ON m.id = s.id WHERE s.due_at <= ? ORDER BY s.due_at, s.id LIMIT ?",
            (now, limit),
        )

    def next_due(self) -> float | None:
        """The earliest re-send time, or None when no row waits for one."""
        try:
            row = self._conn.execute("SELECT min(due_at) FROM sends").fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"outbox {self.path}: {exc}") from exc
        return None if row[0] is None else float(row[0])

    def is_empty(self) -> bool:
        try:
            return self._conn.execute("SELECT 1 FROM messages LIMIT 1").fetchone() is None
        except sqlite3.Error as exc:
            raise StorageError(f"outbox {self.path}: {exc}") from exc

    def _select(self, sql: str, params: tuple[float | int, ...]) -> list[StoredMessage]:
        try:
            rows = self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"outbox {self.path}: cannot read queued messages: {exc}") from exc
        return [StoredMessage(*row) for row in rows]

    def apply(self, changes: Changes) -> int:
        """Write what the publisher learned in one transaction; return the rows the server's acks removed."""
        if not changes:
            return 0
        c = self._conn
        removed = 0
        try:
            c.execute("BEGIN IMMEDIATE")
            if changes.broker_took:  # a row the server acked before its PUBACK is gone: no sends row
                c.executemany(
                    "INSERT INTO sends (id, kind, due_at, sent, attempts) "
                    "SELECT id, kind, ?, 1, 1 FROM messages WHERE id = ? "
                    "ON CONFLICT (id) DO UPDATE SET "
                    "due_at = excluded.due_at, sent = 1, attempts = attempts + 1",
                    changes.broker_took,
                )
            if changes.retry:
                c.executemany(
                    "INSERT INTO sends (id, kind, due_at, sent, attempts) "
                    "SELECT id, kind, ?, 0, 0 FROM messages WHERE id = ? "
                    "ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, sent = 0",
                    changes.retry,
                )
            if changes.resent:
                c.execute(
                    "INSERT INTO delivery (name, value) VALUES ('resent', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (changes.resent,),
                )
            if changes.unacked_only:
                c.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in changes.unacked_only])
            for chunk in _chunks(changes.stored_keys, KEYS_PER_STATEMENT):
                marks = ",".join("?" * len(chunk))
                removed += c.execute(f"DELETE FROM messages WHERE key IN ({marks})", chunk).rowcount
            c.execute("COMMIT")
        except sqlite3.Error as exc:
            if c.in_transaction:
                c.execute("ROLLBACK")
            raise StorageError(f"outbox {self.path}: {exc}") from exc
        return removed

    def delete(self, ids: Sequence[int]) -> None:
        """Forget rows by id (a missing id, e.g. dropped meanwhile, is fine)."""
        if ids:
            self._write("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])

    def drop(self, ids: Sequence[int], reason: str) -> None:
        """Give up on messages that can never be delivered (e.g. bigger than the broker accepts); counted."""
        if not ids:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            cur = self._conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
            self._conn.execute(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                (reason, cur.rowcount),
            )
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(f"outbox {self.path}: {exc}") from exc

    def _write(self, sql: str, params: list[tuple[float | int, ...]]) -> None:
        if not params:
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.executemany(sql, params)
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(f"outbox {self.path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]

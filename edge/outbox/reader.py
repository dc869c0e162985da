"""The publisher thread's side of the outbox: what to send next, and what the acks changed.

A row's delivery state lives in the row (``docs/mqtt.md``, "Delivery guarantees"):

* ``due_at IS NULL``: waiting for its first send since the publisher started; sent in id
  (commit) order.
* ``due_at`` set: handed to the broker; unless the server acknowledges it first, it is
  sent again at ``due_at`` (the publisher's monotonic clock).
* ``sent = 1``: the broker took it (PUBACK); only the server's ``StoredAck`` deletes it.

A publisher that starts (after a restart of the box) cannot trust ``due_at`` from the
previous process's clock, so :meth:`OutboxReader.restart_schedule` puts every row back
to "waiting for its first send": whatever the server has not acknowledged goes out again.

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

    scheduled: list[tuple[float, int]] = field(default_factory=list)  # (due_at, row id): just sent
    resent: int = 0  # how many of those were re-sends
    retry: list[tuple[float, int]] = field(default_factory=list)  # (due_at, row id): send again then
    broker_took: list[int] = field(default_factory=list)  # row ids with a successful PUBACK
    unacked_only: list[int] = field(default_factory=list)  # rows without a key: the PUBACK ends them
    stored_keys: list[str] = field(default_factory=list)  # named by the server's StoredAck

    def __bool__(self) -> bool:
        return bool(self.scheduled or self.retry or self.broker_took or self.unacked_only or self.stored_keys)


class OutboxReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, synchronous="NORMAL")

    def restart_schedule(self) -> int:
        """A new publisher: every row waits for a (re-)send again; returns how many were sent before."""
        try:
            cur = self._conn.execute(
                "UPDATE messages SET due_at = NULL, sent = 0 WHERE due_at IS NOT NULL OR sent = 1"
            )
        except sqlite3.Error as exc:
            raise StorageError(f"outbox {self.path}: cannot reset the send schedule: {exc}") from exc
        return cur.rowcount

    def after(self, last_id: int, limit: int) -> list[StoredMessage]:
        """The next ``limit`` rows waiting for their first send with an id above ``last_id``."""
        return self._select(
            f"SELECT {_COLUMNS} FROM messages WHERE id > ? AND due_at IS NULL ORDER BY id LIMIT ?",
            (last_id, limit),
        )

    def due(self, now: float, limit: int) -> list[StoredMessage]:
        """Up to ``limit`` rows whose re-send time has come, the earliest first."""
        return self._select(
            f"SELECT {_COLUMNS} FROM messages INDEXED BY messages_due WHERE due_at <= ? "
            "ORDER BY due_at, id LIMIT ?",
            (now, limit),
        )

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
            if changes.scheduled:
                c.executemany(
                    "UPDATE messages SET due_at = ?, attempts = attempts + 1 WHERE id = ?", changes.scheduled
                )
            if changes.resent:
                c.execute(
                    "INSERT INTO delivery (name, value) VALUES ('resent', ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    (changes.resent,),
                )
            if changes.retry:
                c.executemany("UPDATE messages SET due_at = ?, sent = 0 WHERE id = ?", changes.retry)
            if changes.broker_took:
                took = [(i,) for i in changes.broker_took]
                c.executemany("UPDATE messages SET sent = 1 WHERE id = ?", took)
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

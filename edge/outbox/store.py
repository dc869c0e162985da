"""The outbox: messages committed to disk before they are sent, deleted once acknowledged.

Size and age policy (documented in ``docs/mqtt.md``):

* **Size**: before a write would take the stored payload bytes over ``max_bytes``, the
  oldest *evidence* is dropped until the new messages fit; only when no evidence is
  left are the oldest *events* dropped. A single message larger than ``max_bytes`` is
  not stored (counted as ``<kind>_too_large``).
* **Age**: evidence older than ``evidence_max_age_s`` and events older than
  ``max_age_s`` are dropped by :meth:`Outbox.expire` (the sink calls it periodically).
  Rows stamped before 2020 (a box that booted without a clock) are never aged out:
  their age is unknown, and losing an event is worse than keeping it.
* Every drop is counted by reason in the ``counters`` table, in the same transaction as
  the drop, and reported in telemetry (``dropped``). A row dropped while in flight may
  still reach the broker.

A write that fails (disk full, I/O error) raises :class:`StorageError`, counted in
memory as ``storage_error`` (a full disk cannot take the count either) and persisted
when the disk takes writes again.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from edge.outbox.schema import connect, open_database
from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

Kind = Literal["event", "evidence"]

#: Drop order under the size limit: cheapest loss first.
DROP_ORDER: tuple[Kind, ...] = ("evidence", "event")

#: Timestamps before this (2020-01-01) come from a box without a set clock.
PLAUSIBLE_EPOCH = 1_577_836_800.0


@dataclass(frozen=True)
class OutboxMessage:
    """A message to store: evidence bytes or an event's JSON, with the topic it goes to."""

    kind: Kind
    topic: str
    payload: bytes


@dataclass(frozen=True)
class StoredMessage:
    """A message as the outbox holds it."""

    id: int
    kind: Kind
    topic: str
    payload: bytes
    created_at: float
    attempts: int


@dataclass(frozen=True)
class OutboxLimits:
    max_bytes: int
    max_age_s: float
    evidence_max_age_s: float | None = None


@dataclass(frozen=True)
class Depth:
    events: int
    evidence: int
    bytes: int
    oldest_created_at: float | None


class Outbox:
    """Thread-safe writer side of the outbox; :meth:`reader` opens the publisher's side."""

    def __init__(
        self, path: str | Path, limits: OutboxLimits, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._clock = clock
        self._lock = threading.Lock()
        self._conn = open_database(self.path)
        self._unsaved_failures = 0  # storage errors not yet written to ``counters``

    # -- writing -------------------------------------------------------------------------

    def put(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Store messages in one durable transaction, in order; return their ids.

        Evidence goes first in ``messages`` so it is published before the event that
        refers to it. Raises :class:`StorageError` when the disk refuses the write.
        """
        now = self._clock()
        with self._lock:
            try:
                return self._put(messages, now)
            except sqlite3.Error as exc:
                self._rollback()
                self._unsaved_failures += 1
                raise StorageError(self._explain(exc, len(messages))) from exc

    def _put(self, messages: Sequence[OutboxMessage], now: float) -> list[int]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        drops: dict[str, int] = {}
        keep = []
        for m in messages:
            if len(m.payload) > self.limits.max_bytes:
                drops[f"{m.kind}_too_large"] = drops.get(f"{m.kind}_too_large", 0) + 1
                log.error("outbox: a %d-byte %s exceeds outbox.max_bytes; not stored", len(m.payload), m.kind)
            else:
                keep.append(m)
        incoming = sum(len(m.payload) for m in keep)
        stored = conn.execute("SELECT coalesce(sum(bytes), 0) FROM totals").fetchone()[0]
        excess = stored + incoming - self.limits.max_bytes
        for kind in DROP_ORDER:
            if excess <= 0:
                break
            freed, count = self._drop_oldest(kind, excess)
            excess -= freed
            if count:
                drops[f"{kind}_size_limit"] = drops.get(f"{kind}_size_limit", 0) + count
        if self._unsaved_failures:
            drops["storage_error"] = drops.get("storage_error", 0) + self._unsaved_failures
        ids = []
        for m in keep:
            cur = conn.execute(
                "INSERT INTO messages (kind, topic, payload, size, created_at) VALUES (?, ?, ?, ?, ?)",
                (m.kind, m.topic, m.payload, len(m.payload), now),
            )
            ids.append(int(cur.lastrowid or 0))
        self._count(drops)
        conn.execute("COMMIT")
        self._unsaved_failures = 0
        if any(k.endswith("_size_limit") for k in drops):
            log.warning("outbox full (%d bytes max): dropped %s", self.limits.max_bytes, drops)
        return ids

    def _drop_oldest(self, kind: Kind, excess: int) -> tuple[int, int]:
        """Delete the oldest rows of one kind until ``excess`` bytes are freed (or none are left)."""
        freed = count = 0
        last_id = 0
        while freed < excess:
            rows = self._conn.execute(
                "SELECT id, size FROM messages WHERE kind = ? AND id > ? ORDER BY id LIMIT 256",
                (kind, last_id),
            ).fetchall()
            if not rows:
                break
            for row_id, size in rows:
                last_id, freed, count = row_id, freed + size, count + 1
                if freed >= excess:
                    break
        if count:
            self._conn.execute("DELETE FROM messages WHERE kind = ? AND id <= ?", (kind, last_id))
        return freed, count

    def expire(self) -> dict[str, int]:
        """Drop messages past their age limit; return the counts by reason."""
        now = self._clock()
        evidence_age = self.limits.evidence_max_age_s or self.limits.max_age_s
        drops: dict[str, int] = {}
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for kind, max_age in (("evidence", evidence_age), ("event", self.limits.max_age_s)):
                    cur = self._conn.execute(
                        "DELETE FROM messages WHERE kind = ? AND created_at < ? AND created_at >= ?",
                        (kind, now - max_age, PLAUSIBLE_EPOCH),
                    )
                    if cur.rowcount:
                        drops[f"{kind}_age_limit"] = cur.rowcount
                self._count(drops)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"outbox {self.path}: cannot drop expired messages: {exc}") from exc
        if drops:
            log.warning("outbox: dropped messages past their age limit: %s", drops)
        return drops

    def _count(self, drops: dict[str, int]) -> None:
        self._conn.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            [(name, n) for name, n in drops.items() if n],
        )

    # -- reading ---------------------------------------------------------------------------

    def depth(self) -> Depth:
        with self._lock:
            rows = dict(
                (kind, (n, b)) for kind, n, b in self._conn.execute("SELECT kind, rows, bytes FROM totals")
            )
            oldest = self._conn.execute("SELECT created_at FROM messages ORDER BY id LIMIT 1").fetchone()
        events, evidence = rows.get("event", (0, 0)), rows.get("evidence", (0, 0))
        return Depth(
            events=events[0],
            evidence=evidence[0],
            bytes=events[1] + evidence[1],
            oldest_created_at=oldest[0] if oldest else None,
        )

    def dropped(self) -> dict[str, int]:
        """Drop counts by reason since the outbox file was created (plus unsaved storage errors)."""
        with self._lock:
            counts = {
                name: int(value) for name, value in self._conn.execute("SELECT name, value FROM counters")
            }
            if self._unsaved_failures:
                counts["storage_error"] = counts.get("storage_error", 0) + self._unsaved_failures
        return counts

    def reader(self) -> OutboxReader:
        return OutboxReader(self.path)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- helpers ---------------------------------------------------------------------------

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.debug("rollback failed", exc_info=True)

    def _explain(self, exc: sqlite3.Error, count: int) -> str:
        code = getattr(exc, "sqlite_errorcode", None)
        what = f"outbox {self.path}: {count} message(s) NOT stored"
        if code == sqlite3.SQLITE_FULL:
            return f"{what}: the disk (or the database's page limit) is full; free space on that disk"
        return f"{what}: {exc}"


class OutboxReader:
    """The publisher thread's own connection: reads in id order, deletes acknowledged rows."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = connect(path, synchronous="NORMAL")

    def after(self, last_id: int, limit: int) -> list[StoredMessage]:
        """The next ``limit`` messages with an id above ``last_id``, oldest first."""
        try:
            rows = self._conn.execute(
                "SELECT id, kind, topic, payload, created_at, attempts FROM messages "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (last_id, limit),
            ).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"outbox {self.path}: cannot read queued messages: {exc}") from exc
        return [StoredMessage(*row) for row in rows]

    def mark_attempted(self, first_id: int, last_id: int) -> None:
        """Count one more send attempt for the (contiguous) batch just published."""
        self._write(
            "UPDATE messages SET attempts = attempts + 1 WHERE id BETWEEN ? AND ?", [(first_id, last_id)]
        )

    def delete(self, ids: Sequence[int]) -> None:
        """Forget acknowledged messages (a missing id, e.g. dropped meanwhile, is fine)."""
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

    def _write(self, sql: str, params: list[tuple[int, ...]]) -> None:
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

"""The outbox: messages committed to disk before they are sent, deleted once the server stored them.

A row leaves the outbox when the server's ``StoredAck`` names it (an event by
``event_id``, an image by its SHA-256; :class:`edge.outbox.reader.OutboxReader` does
that), not when the broker acknowledged it. Size and age policy (``docs/mqtt.md``):

* **Size**: before a write would take the stored payload bytes over ``max_bytes``, the
  oldest *evidence* is dropped until the new messages fit; only when no evidence is
  left are the oldest *events* dropped. A single message larger than ``max_bytes`` is
  not stored (counted as ``<kind>_too_large``).
* **Disk full**: when the disk refuses a write, the outbox releases its reserve file,
  drops the oldest *evidence* (then, if none is left and the write is at most 1 MiB, the
  oldest events) to make room and retries, counted as ``<kind>_disk_full``. Only a write
  that still fails is lost: counted as ``storage_error`` in a ledger file that needs no
  free space to update.
* **Age**: evidence older than ``evidence_max_age_s`` and events older than
  ``max_age_s`` are dropped by :meth:`Outbox.expire` (the sink calls it periodically).
  Age is measured on the outbox's own clock: seconds the outbox has been open, from a
  monotonic clock, carried across restarts in the file. The wall clock never ages a
  row, so a clock that jumps forward (NTP or GPS correcting a box that booted 14 days
  behind) drops nothing; time the box is switched off does not count either.
* Every drop is counted by reason in the ``counters`` table, in the same transaction as
  the drop, and reported in telemetry (``dropped``). A row dropped while in flight may
  still reach the server.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.outbox.reader import Kind, OutboxReader
from edge.outbox.schema import message_key, open_database
from edge.outbox.spare import LossLedger, Reserve
from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

#: Drop order under the size limit and on a full disk: cheapest loss first.
DROP_ORDER: tuple[Kind, ...] = ("evidence", "event")

#: On a full disk, free at least this much per round of eviction (pages are reused, not returned).
EVICT_AT_LEAST = 1024 * 1024
#: Rounds of "make room, retry" before a write counts as lost.
EVICT_ROUNDS = 8


@dataclass(frozen=True)
class OutboxMessage:
    """A message to store: evidence bytes or an event's JSON, with the topic it goes to.

    ``key`` is what the server's acknowledgement names (``event_id`` / SHA-256); when
    None it is read from the payload (events) or the topic's last level (evidence).
    """

    kind: Kind
    topic: str
    payload: bytes
    key: str | None = None


@dataclass(frozen=True)
class OutboxLimits:
    max_bytes: int
    max_age_s: float
    evidence_max_age_s: float | None = None
    reserve_bytes: int = 0


@dataclass(frozen=True)
class Depth:
    events: int
    evidence: int
    bytes: int
    oldest_created_at: float | None
    sent_events: int = 0  # the broker took them; the server has not acknowledged them yet
    sent_evidence: int = 0


class Outbox:
    """Thread-safe writer side of the outbox; :meth:`reader` opens the publisher's side.

    ``clock`` (wall time) only stamps ``created_at`` for display; ``monotonic`` drives the
    outbox clock that ages rows.
    """

    def __init__(
        self,
        path: str | Path,
        limits: OutboxLimits,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.limits = limits
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._conn = open_database(self.path)
        self._reserve = Reserve(self.path.with_name(self.path.name + ".reserve"), limits.reserve_bytes)
        self._reserve.hold()
        self._losses = LossLedger(self.path.with_name(self.path.name + ".losses"))
        saved = self._conn.execute("SELECT value FROM clock WHERE name = 'age_s'").fetchone()
        self._age_base = float(saved[0])
        self._opened_at = monotonic()

    # -- the outbox clock ------------------------------------------------------------------

    def age_clock(self) -> float:
        """Seconds this outbox has been open, summed over every run (never jumps, never goes back)."""
        return self._age_base + max(0.0, self._monotonic() - self._opened_at)

    def _save_clock(self, age: float) -> None:
        self._conn.execute("UPDATE clock SET value = max(value, ?) WHERE name = 'age_s'", (age,))

    # -- writing -------------------------------------------------------------------------

    def put(self, messages: Sequence[OutboxMessage]) -> list[int]:
        """Store messages in one durable transaction, in order; return their ids.

        Evidence goes first in ``messages`` so it is published before the event that
        refers to it. On a full disk older evidence makes room first; raises
        :class:`StorageError` when the write still cannot be stored (counted).
        """
        now = self._clock()
        with self._lock:
            age = self.age_clock()
            exc = self._try_put(messages, now, age)
            if isinstance(exc, list):
                return exc
            needed = sum(len(m.payload) for m in messages)
            rounds = 0
            while _is_full(exc) and rounds < EVICT_ROUNDS and self._make_room(needed):
                rounds += 1
                exc = self._try_put(messages, now, age)
                if isinstance(exc, list):
                    log.warning("outbox: disk full; dropped older evidence to store a new event")
                    self._reserve.hold()
                    return exc
            self._losses.add("storage_error")
            raise StorageError(self._explain(exc, len(messages))) from exc

    def _try_put(
        self, messages: Sequence[OutboxMessage], now: float, age: float
    ) -> list[int] | sqlite3.Error:
        try:
            return self._put(messages, now, age)
        except sqlite3.Error as exc:
            self._rollback()
            return exc

    def _put(self, messages: Sequence[OutboxMessage], now: float, age: float) -> list[int]:
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
        ids = []
        for m in keep:
            key = m.key if m.key is not None else message_key(m.kind, m.topic, m.payload)
            cur = conn.execute(
                "INSERT INTO messages (kind, topic, payload, size, created_at, key, created_age) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (m.kind, m.topic, m.payload, len(m.payload), now, key, age),
            )
            ids.append(int(cur.lastrowid or 0))
        self._count(drops)
        conn.execute("COMMIT")
        if any(k.endswith("_size_limit") for k in drops):
            log.warning("outbox full (%d bytes max): dropped %s", self.limits.max_bytes, drops)
        return ids

    def _make_room(self, needed: int) -> bool:
        """The disk is full: release the reserve, drop the oldest evidence (then events). True if
        anything was freed, so a retry may succeed."""
        released = self._reserve.release()
        if released:
            log.warning("outbox: disk full; released the reserve %s", self._reserve.path)
        want = max(needed * 2, EVICT_AT_LEAST)
        # Events only make room for writes of event size: one huge write must not empty the outbox.
        kinds = DROP_ORDER if needed <= EVICT_AT_LEAST else ("evidence",)
        for attempt in range(2):
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                drops: dict[str, int] = {}
                for kind in kinds:
                    _, count = self._drop_oldest(kind, want)
                    if count:
                        drops[f"{kind}_disk_full"] = count
                        break  # evidence first; events only when no evidence is left
                self._count(drops)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                if attempt == 0 and _is_full(exc):
                    self._checkpoint()  # fold the log into the database, then try once more
                    continue
                log.error("outbox: disk full and older messages cannot be dropped either: %s", exc)
                return released
            self._checkpoint()
            if drops:
                log.warning("outbox: disk full; dropped %s to make room", drops)
            return bool(drops) or released
        return released

    def _checkpoint(self) -> None:
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            log.debug("checkpoint failed: %s", exc)

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
        """Drop messages past their age limit (on the outbox clock); return the counts by reason.

        Also saves the outbox clock, so a restart resumes it, and sets the disk reserve
        aside again once there is room.
        """
        evidence_age = self.limits.evidence_max_age_s or self.limits.max_age_s
        drops: dict[str, int] = {}
        with self._lock:
            age = self.age_clock()
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for kind, max_age in (("evidence", evidence_age), ("event", self.limits.max_age_s)):
                    cur = self._conn.execute(
                        "DELETE FROM messages WHERE kind = ? AND created_age < ?", (kind, age - max_age)
                    )
                    if cur.rowcount:
                        drops[f"{kind}_age_limit"] = cur.rowcount
                self._count(drops)
                self._save_clock(age)
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback()
                raise StorageError(f"outbox {self.path}: cannot drop expired messages: {exc}") from exc
            self._reserve.hold()
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
            sent = dict(
                self._conn.execute(
                    "SELECT kind, count(*) FROM sends INDEXED BY sends_sent WHERE sent = 1 GROUP BY kind"
                ).fetchall()
            )
        events, evidence = rows.get("event", (0, 0)), rows.get("evidence", (0, 0))
        return Depth(
            events=events[0],
            evidence=evidence[0],
            bytes=events[1] + evidence[1],
            oldest_created_at=oldest[0] if oldest else None,
            sent_events=int(sent.get("event", 0)),
            sent_evidence=int(sent.get("evidence", 0)),
        )

    def dropped(self) -> dict[str, int]:
        """Drop counts by reason since the outbox file was created, storage errors included."""
        with self._lock:
            counts = {
                name: int(value) for name, value in self._conn.execute("SELECT name, value FROM counters")
            }
            for name, value in self._losses.counts.items():
                counts[name] = counts.get(name, 0) + value
        return counts

    def delivery(self) -> dict[str, int]:
        """Delivery counters since the outbox file was created (``resent``: re-sends after no ack)."""
        with self._lock:
            rows = self._conn.execute("SELECT name, value FROM delivery").fetchall()
        return {name: int(value) for name, value in rows}

    def reader(self) -> OutboxReader:
        return OutboxReader(self.path)

    def close(self) -> None:
        with self._lock:
            try:
                self._save_clock(self.age_clock())
            except sqlite3.Error as exc:
                log.warning("outbox %s: could not save its clock on close: %s", self.path, exc)
            self._conn.close()
            self._losses.close()

    # -- helpers ---------------------------------------------------------------------------

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            try:
                self._conn.execute("ROLLBACK")
            except sqlite3.Error:
                log.debug("rollback failed", exc_info=True)

    def _explain(self, exc: sqlite3.Error, count: int) -> str:
        what = f"outbox {self.path}: {count} message(s) NOT stored"
        if _is_full(exc):
            return f"{what}: the disk (or the database's page limit) is full; free space on that disk"
        return f"{what}: {exc}"


def _is_full(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL

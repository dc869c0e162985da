"""Drains the outbox to the broker with a bounded window, and deletes rows the server says it stored.

One thread owns the publishing side. Each round it takes the broker's PUBACKs and
the server's ``StoredAck`` messages (both arrive on the network thread and are queued
here), writes what they changed in one transaction, then publishes: rows whose
re-send time has come first, then rows never sent since the start, in id order.

End to end (``docs/mqtt.md``, "Delivery guarantees"):

* A PUBACK only means the broker has the message. It marks the row ``sent``; the row
  stays until a ``StoredAck`` on ``.../acks`` names it (``event_id`` / SHA-256).
* A row the server has not acknowledged ``stored_ack_timeout_s`` after it was sent is
  sent again; each further re-send waits twice as long, up to
  ``stored_ack_timeout_max_s``. This covers a broker that lost its queue (SIGKILL), a
  stopped or restarted ingest, and a server that could not store (full evidence disk).
* A PUBACK with reason 0x10 "No matching subscribers" means nobody received it (e.g. the
  ingest has not subscribed again after a broker restart): the row is sent again
  after a backoff, and publishing pauses for that backoff.
* A refusal (0x80 and up: 0x87 Not authorized from an ACL, 0x97 Quota exceeded, ...)
  keeps the row, logs once, pauses publishing with backoff and then sends it again.
* If a connected broker returns no PUBACK for ``puback_timeout_s``, what is in flight is
  sent again at once.
* After a restart nothing is known about what was sent: every row left in the outbox
  goes out again, in order. The server treats a repeated ``event_id`` as a no-op.

Packet ids (mids) are only unique among the messages paho still holds: paho keeps an
unacknowledged QoS 1 message across reconnects and re-sends it under the same mid,
then frees the mid at the PUBACK and will hand it out again later. So PUBACKs are
matched here, on the publisher thread, after the publish that produced the mid was
recorded; a mapping is removed at its PUBACK and never consulted for an unknown mid
(status and telemetry publishes share the mid space).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from edge.mqtt.backoff import Backoff
from edge.mqtt.connection import FIRST_FAILURE_REASON, NO_MATCHING_SUBSCRIBERS, MqttConnection
from edge.outbox import Changes, Outbox, OutboxReader, StoredMessage
from streetwatch.errors import PayloadError, StorageError
from streetwatch.messages import StoredAck

log = logging.getLogger(__name__)

#: Acknowledged changes are written in batches: commits (and fsyncs) stay off the per-message path.
WRITE_BATCH = 256
WRITE_EVERY_S = 0.2

REASON_NAMES = {
    0x10: "No matching subscribers",
    0x80: "Unspecified error",
    0x83: "Implementation specific error",
    0x87: "Not authorized",
    0x90: "Topic Name invalid",
    0x91: "Packet Identifier in use",
    0x97: "Quota exceeded",
    0x99: "Payload format invalid",
}


class OutboxPublisher:
    def __init__(
        self,
        outbox: Outbox,
        connection: MqttConnection,
        *,
        refused_min_s: float = 1.0,
        refused_max_s: float = 60.0,
        puback_timeout_s: float = 60.0,
        stored_ack_timeout_s: float = 90.0,
        stored_ack_timeout_max_s: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._connection = connection
        self._reader: OutboxReader | None = None
        self._acks: collections.deque[tuple[int, int]] = collections.deque()
        self._stored: collections.deque[bytes] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight: dict[int, tuple[int, bool, int]] = {}  # mid -> (row id, has a key, attempts)
        self._unwritten: set[int] = set()  # rows whose new send state is not written yet
        self._next_due: float | None = None  # earliest re-send time written (None: no re-send waits)
        self._cursor = 0  # highest row id handed to paho for its first send
        self._changes = Changes()
        self._last_write = 0.0
        self._last_ack = 0.0
        self._paused_until = 0.0
        self._refusal_logged: str | None = None
        self._backoff = Backoff(refused_min_s, refused_max_s)
        self._puback_timeout_s = puback_timeout_s
        self._stored_ack_timeout_s = stored_ack_timeout_s
        self._stored_ack_timeout_max_s = max(stored_ack_timeout_max_s, stored_ack_timeout_s)
        self._clock = clock
        self._idle = threading.Event()  # set while the outbox is empty and nothing is in flight
        self._generation = 0  # bumped by notify(), so a read that raced a commit is not "idle"
        # Guards generation + idle together: without it a notify() landing between the
        # publisher's "nothing left?" check and its idle.set() would leave idle set over a
        # freshly committed row, and close() would skip the drain.
        self._idle_lock = threading.Lock()
        self._last_connect = 0.0
        self._bad_ack_logged = False
        self.acked = 0  # PUBACKs that said the broker took a message
        self.refused = 0  # PUBACKs with a failure reason
        self.unheard = 0  # PUBACKs with 0x10: nobody subscribed
        self.resent = 0  # re-sends of rows the server had not acknowledged in time
        self.stored = 0  # rows deleted because the server acknowledged them
        self._thread = threading.Thread(target=self._run, name="outbox-publisher", daemon=True)

    # -- called from other threads -----------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout)

    def notify(self) -> None:
        """New rows were committed (or the link came up): look at the outbox now."""
        with self._idle_lock:
            self._generation += 1
            self._idle.clear()
        self._wake.set()

    def on_connected(self) -> None:
        """The link is (back) up: paho re-sends what was in flight, so restart the stall clock."""
        self._last_connect = self._clock()
        self.notify()

    def on_ack(self, mid: int, reason: int) -> None:
        """paho's PUBACK callback (network thread): queue it for the publisher thread."""
        self._acks.append((mid, reason))
        self._wake.set()

    def on_stored_ack(self, payload: bytes) -> None:
        """A ``StoredAck`` from the server (network thread): parsed and applied on the publisher thread."""
        self._stored.append(payload)
        self._wake.set()

    def wait_idle(self, timeout: float) -> bool:
        """Block until the server acknowledged every row and nothing is in flight (tests, shutdown)."""
        return self._idle.wait(timeout)

    # -- publisher thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._reader = self._outbox.reader()
        try:
            self._restart_schedule()
            while not self._stopping.is_set():
                self._wake.clear()
                try:
                    busy = self._step()
                except StorageError as exc:
                    log.error("outbox publisher: %s; retrying in 1 s", exc)
                    busy = False
                    self._stopping.wait(1.0)
                except Exception:  # a surprise must not end delivery for good: log it, go on
                    log.exception("outbox publisher failed; retrying in 1 s")
                    busy = False
                    self._stopping.wait(1.0)
                if not busy:
                    self._wake.wait(WRITE_EVERY_S)
            self._last_round()
            self._take_stored()
            self._write(force=True)
        except StorageError as exc:
            log.error("outbox publisher: %s", exc)
        finally:
            self._reader.close()

    def _last_round(self) -> None:
        """Stopping: hand what was committed meanwhile to the client once more while the link is up
        (it goes out before the link says offline); unacknowledged rows stay for the next start."""
        if not self._connection.connected.is_set():
            return
        try:
            self._step()
        except Exception as exc:  # stopping goes on: the rows stay in the outbox
            log.warning("outbox publisher: last round before stopping failed: %s", exc)

    def _restart_schedule(self) -> None:
        assert self._reader is not None
        while not self._stopping.is_set():
            try:
                again = self._reader.restart_schedule()
            except StorageError as exc:
                log.error("outbox publisher: %s; retrying in 1 s", exc)
                self._stopping.wait(1.0)
                continue
            if again:
                log.info("%d message(s) sent before the restart and not yet acknowledged go out again", again)
            return

    def _step(self) -> bool:
        """One round: take acks, write, publish. True if more work is ready at once."""
        now = self._clock()
        self._take_acks(now)
        self._take_stored()
        self._write(force=bool(self._changes.retry))
        if not self._connection.connected.is_set() or now < self._paused_until:
            return False
        self._check_stall(now)
        window = self._connection.window
        room = window - len(self._inflight)
        # Refill in batches: while most of the window is in flight, wait for a quarter of it to
        # come back instead of reading the outbox for one row per PUBACK.
        if room <= 0 or (self._inflight and room < max(1, window // 4)):
            return False
        assert self._reader is not None
        generation = self._generation
        due = self._due_rows(now, room)
        fresh = self._reader.after(self._cursor, room - len(due)) if len(due) < room else []
        rows = due + fresh
        if not rows:
            if not self._inflight:
                self._write(force=True)
                if not self._stored and self._reader.is_empty():
                    self._mark_idle_unless_notified(generation)
            return False
        rows = self._drop_oversized(rows)
        if not rows:
            return True
        published = 0
        first_send = {r.id for r in fresh}
        for row in rows:
            mid = self._connection.publish(row.topic, row.payload)
            if mid is None:
                break
            if not self._inflight:
                self._last_ack = now  # the stall clock starts with the first message in flight
            self._inflight[mid] = (row.id, row.key is not None, row.attempts)
            if row.id in first_send:
                self._cursor = max(self._cursor, row.id)
            else:
                self._changes.resent += 1
                self.resent += 1
            published += 1
        return published == len(rows)

    def _due_rows(self, now: float, room: int) -> list[StoredMessage]:
        """Rows whose re-send time has come (the outbox is only asked once one can be due)."""
        if self._next_due is None or now < self._next_due:
            return []
        assert self._reader is not None
        found = self._reader.due(now, room)
        if len(found) < room:
            # Rows just sent keep their old time until their PUBACK is written: look again shortly.
            later = self._reader.next_due()
            self._next_due = None if later is None else max(later, now + WRITE_EVERY_S)
        busy = {row_id for row_id, _, _ in self._inflight.values()} | self._unwritten
        return [r for r in found if r.id not in busy]

    def _expect_due(self, due_at: float) -> None:
        if self._next_due is None or due_at < self._next_due:
            self._next_due = due_at

    def _wait_for_server(self, attempts: int) -> float:
        """How long to wait for the server's ack of a send that has had ``attempts`` before it."""
        return min(self._stored_ack_timeout_max_s, self._stored_ack_timeout_s * 2 ** min(attempts, 32))

    def _mark_idle_unless_notified(self, generation: int) -> None:
        with self._idle_lock:
            if generation == self._generation:
                self._idle.set()

    def _drop_oversized(self, rows: list[StoredMessage]) -> list[StoredMessage]:
        """A message the broker will never take would block the queue forever: count it and let it go."""
        limit = self._connection.max_packet_size
        if limit is None:
            return rows
        keep = []
        for row in rows:
            # PUBLISH overhead: fixed header (<= 5), topic length (2) + topic, packet id (2), properties (1).
            if len(row.payload) + len(row.topic.encode()) + 10 > limit:
                log.error(
                    "outbox row %d (%s, %d bytes) exceeds the broker's max packet size (%d bytes); dropped",
                    row.id,
                    row.kind,
                    len(row.payload),
                    limit,
                )
                assert self._reader is not None
                self._reader.drop([row.id], f"{row.kind}_too_large_for_broker")
                self._cursor = max(self._cursor, row.id)
            else:
                keep.append(row)
        return keep

    def _take_acks(self, now: float) -> None:
        refused: list[tuple[int, int]] = []
        unheard: list[int] = []
        took = False
        while self._acks:
            mid, reason = self._acks.popleft()
            entry = self._inflight.pop(mid, None)
            if entry is None:
                continue  # status/telemetry, or a mapping given up by the stall check
            row_id, keyed, attempts = entry
            self._last_ack = now
            if reason == NO_MATCHING_SUBSCRIBERS:
                unheard.append(row_id)
            elif reason < FIRST_FAILURE_REASON:
                took = True
                self.acked += 1
                if keyed:  # now it waits for the server's acknowledgement, then goes out again
                    due_at = now + self._wait_for_server(attempts)
                    self._changes.broker_took.append((due_at, row_id))
                    self._unwritten.add(row_id)
                    self._expect_due(due_at)
                else:
                    self._changes.unacked_only.append(row_id)  # nothing the server could name: done here
            else:
                refused.append((row_id, reason))
        if refused or unheard:
            self._hold_back(refused, unheard, now)
        elif took and self._refusal_logged is not None:
            self._refusal_logged = None
            self._backoff.reset()

    def _hold_back(self, refused: list[tuple[int, int]], unheard: list[int], now: float) -> None:
        """Refused or unheard messages stay in the outbox; pause, then send them again."""
        self.refused += len(refused)
        self.unheard += len(unheard)
        delay = self._backoff.next_delay()
        rows = sorted([row_id for row_id, _ in refused] + unheard)
        reason = min(refused)[1] if refused else NO_MATCHING_SUBSCRIBERS
        name = REASON_NAMES.get(reason, "failure")
        if self._refusal_logged != name:
            self._refusal_logged = name
            hint = " (is the server's ingest running and subscribed?)" if not refused else ""
            log.warning(
                "%d message(s) not delivered (reason 0x%02x %s%s) stay in the outbox; publishing pauses "
                "%.1f s and then sends them again, with growing backoff",
                len(rows),
                reason,
                name,
                hint,
                delay,
            )
        self._paused_until = now + delay
        self._changes.retry.extend((now + delay, row_id) for row_id in rows)
        self._unwritten.update(rows)
        self._expect_due(now + delay)

    def _take_stored(self) -> None:
        while self._stored:
            payload = self._stored.popleft()
            try:
                ack = StoredAck.from_json(payload)
            except PayloadError as exc:
                if not self._bad_ack_logged:
                    self._bad_ack_logged = True
                    log.warning("ignoring an acknowledgement from the server that does not parse: %s", exc)
                continue
            self._changes.stored_keys.extend(str(event_id) for event_id in ack.events)
            self._changes.stored_keys.extend(ack.evidence)

    def _check_stall(self, now: float) -> None:
        waited = now - max(self._last_ack, self._last_connect)
        if self._inflight and waited > self._puback_timeout_s:
            rows = sorted(row_id for row_id, _, _ in self._inflight.values())
            log.warning(
                "MQTT: no acknowledgement for %.0f s with %d message(s) in flight; re-sending from row %d",
                waited,
                len(rows),
                rows[0],
            )
            self._inflight.clear()
            self._changes.retry.extend((now, row_id) for row_id in rows)
            self._unwritten.update(rows)
            self._expect_due(now)
            self._last_ack = now

    def _write(self, *, force: bool) -> None:
        changes = self._changes
        if not changes or self._reader is None:
            return
        now = self._clock()
        pending = len(changes.broker_took) + len(changes.stored_keys) + len(changes.unacked_only)
        if force or pending >= WRITE_BATCH or now - self._last_write >= WRITE_EVERY_S:
            self._changes = Changes()
            try:
                self.stored += self._reader.apply(changes)
            except StorageError:
                self._changes = _merge(changes, self._changes)  # keep them for the next try
                raise
            self._unwritten.clear()
            self._last_write = now


def _merge(first: Changes, then: Changes) -> Changes:
    return Changes(
        resent=first.resent + then.resent,
        retry=first.retry + then.retry,
        broker_took=first.broker_took + then.broker_took,
        unacked_only=first.unacked_only + then.unacked_only,
        stored_keys=first.stored_keys + then.stored_keys,
    )

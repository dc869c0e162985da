"""Drains the outbox to the broker in id order, with a bounded window of unacknowledged messages.

One thread owns the publishing side: it reads rows after its cursor, hands them to
paho, remembers packet id -> row id, and deletes a row only after its PUBACK.

Packet ids (mids) are only unique among the messages paho still holds: paho keeps an
unacknowledged QoS 1 message across reconnects and re-sends it under the same mid,
then frees the mid at the PUBACK and will hand it out again later. So:

* acks arrive from the network thread into a queue and are matched here, on the
  publisher thread, after the publish that produced the mid was recorded (an ack can
  come back before ``publish()`` has even returned);
* a mapping is removed at its ack and never consulted for an unknown mid (status and
  telemetry publishes share the mid space);
* after a restart nothing is mapped and the cursor starts at 0: every row left in the
  outbox is sent again, in order (a row acknowledged just before the crash arrives
  twice; the server ignores the repeated ``event_id``).

A PUBACK with a failure reason (0x87 Not authorized from an ACL, 0x97 Quota exceeded,
...) keeps the row, logs once, pauses publishing with backoff and then replays from
the refused row. If a connected broker acknowledges nothing for ``ack_timeout_s``,
the window is replayed from its oldest row (belt and braces; duplicates are harmless).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from edge.mqtt.backoff import Backoff
from edge.mqtt.connection import FIRST_FAILURE_REASON, MqttConnection
from edge.outbox import Outbox, OutboxReader, StoredMessage
from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

#: Deleting acked rows in batches keeps commits (and fsyncs) off the per-message path.
DELETE_BATCH = 256
DELETE_EVERY_S = 0.2

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
        ack_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._connection = connection
        self._reader: OutboxReader | None = None
        self._acks: collections.deque[tuple[int, int]] = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._inflight: dict[int, int] = {}  # mid -> row id
        self._cursor = 0  # highest row id handed to paho
        self._to_delete: list[int] = []
        self._last_delete = 0.0
        self._last_ack = 0.0
        self._paused_until = 0.0
        self._replay_from: int | None = None
        self._refusal_logged: str | None = None
        self._backoff = Backoff(refused_min_s, refused_max_s)
        self._ack_timeout_s = ack_timeout_s
        self._clock = clock
        self._idle = threading.Event()  # set while nothing is waiting or in flight
        self._generation = 0  # bumped by notify(), so a read that raced a commit is not "idle"
        # Guards generation + idle together: without it a notify() landing between the
        # publisher's "generation unchanged?" check and its idle.set() would leave idle set
        # over a freshly committed row, and close() would skip the drain.
        self._idle_lock = threading.Lock()
        self._last_connect = 0.0
        self.acked = 0
        self.refused = 0
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

    def wait_idle(self, timeout: float) -> bool:
        """Block until the outbox is empty and every publish is acknowledged (tests, shutdown)."""
        return self._idle.wait(timeout)

    # -- publisher thread ---------------------------------------------------------------------

    def _run(self) -> None:
        self._reader = self._outbox.reader()
        try:
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
                    self._wake.wait(DELETE_EVERY_S)
            self._flush_deletes(force=True)
        finally:
            self._reader.close()

    def _step(self) -> bool:
        """One round: take acks, delete, maybe replay, publish. True if more work is ready."""
        now = self._clock()
        self._take_acks(now)
        self._flush_deletes(force=False)
        if self._replay_from is not None and now >= self._paused_until:
            self._flush_deletes(force=True)  # never re-read a row whose ack is only in memory
            self._cursor = self._replay_from - 1
            self._replay_from = None
        if not self._connection.connected.is_set() or now < self._paused_until:
            return False
        self._check_stall(now)
        room = self._connection.window - len(self._inflight)
        if room <= 0:
            return False
        assert self._reader is not None
        generation = self._generation
        rows = self._reader.after(self._cursor, room)
        if not rows:
            if not self._inflight and self._replay_from is None:
                self._flush_deletes(force=True)
                self._mark_idle_unless_notified(generation)
            return False
        if not self._inflight:
            self._last_ack = now  # the stall clock starts with the first message in flight
        rows = self._drop_oversized(rows)
        if not rows:
            return True
        published = 0
        for row in rows:
            mid = self._connection.publish(row.topic, row.payload)
            if mid is None:
                break
            self._inflight[mid] = row.id
            self._cursor = row.id
            published += 1
        if published:
            self._reader.mark_attempted(rows[0].id, rows[published - 1].id)
        return published == len(rows)

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
        while self._acks:
            mid, reason = self._acks.popleft()
            row_id = self._inflight.pop(mid, None)
            if row_id is None:
                continue  # status/telemetry, or a mapping given up by the stall check
            self._last_ack = now
            if reason < FIRST_FAILURE_REASON:
                self._to_delete.append(row_id)
                self.acked += 1
            else:
                refused.append((row_id, reason))
        if refused:
            self._refuse(refused, now)
        elif self._to_delete and self._refusal_logged is not None:
            self._refusal_logged = None
            self._backoff.reset()

    def _refuse(self, refused: list[tuple[int, int]], now: float) -> None:
        self.refused += len(refused)
        first_row, reason = min(refused)
        name = REASON_NAMES.get(reason, "failure")
        delay = self._backoff.next_delay()
        if self._refusal_logged != name:
            self._refusal_logged = name
            log.warning(
                "%d refused message(s) (reason 0x%02x %s) stay in the outbox; publishing pauses "
                "%.1f s and then retries from row %d, with growing backoff",
                len(refused),
                reason,
                name,
                delay,
                first_row,
            )
        self._paused_until = now + delay
        self._replay_from = first_row if self._replay_from is None else min(self._replay_from, first_row)

    def _check_stall(self, now: float) -> None:
        waited = now - max(self._last_ack, self._last_connect)
        if self._inflight and waited > self._ack_timeout_s:
            oldest = min(self._inflight.values())
            log.warning(
                "MQTT: no acknowledgement for %.0f s with %d message(s) in flight; re-sending from row %d",
                waited,
                len(self._inflight),
                oldest,
            )
            self._inflight.clear()
            self._replay_from = oldest
            self._last_ack = now

    def _flush_deletes(self, *, force: bool) -> None:
        if not self._to_delete or self._reader is None:
            return
        now = self._clock()
        if force or len(self._to_delete) >= DELETE_BATCH or now - self._last_delete >= DELETE_EVERY_S:
            self._reader.delete(self._to_delete)
            self._to_delete = []
            self._last_delete = now

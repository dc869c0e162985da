"""Storing one batch of received messages in one transaction, with an explicit outcome.

    storer = BatchStorer(settings, sessions, clock)
    result = storer.store(batch)              # one attempt, one transaction
    result.outcome                            # committed | deferred | outage_retry | isolate_one

One call is one attempt; the caller (the MQTT consumer, :mod:`server.ingest.worker`)
decides what follows from the outcome:

* ``committed``: every message is stored (or refused and counted); ack them all.
* ``deferred``: committed too, but another worker held the locks of ``result.deferred``;
  ack ``result.done`` and offer the deferred ones again with a later batch (after
  :data:`MAX_DEFERRALS` tries, in a transaction that waits for the locks).
* ``outage_retry``: nothing was stored because the database is unwell (down, read-only,
  not migrated) or the transaction lost a deadlock (``result.conflict``: try again at
  once); keep the batch unacknowledged and try again.
* ``isolate_one``: nothing was stored because something in the batch breaks the code or
  violates a constraint; store the messages one by one to find it. A lone message that
  still fails is stored as a ``processing_error`` refusal (:meth:`Received.refused`).

Several workers (PostgreSQL): a batch takes the advisory locks of the cells, tracks
and evidence it touches without waiting (``locks.try_acquire``) unless asked to wait.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from server.fleet.replies import record_reply
from server.ingest import locks
from server.ingest.acks import AckKey
from server.ingest.messages import Decoded, EvidenceReceived, Rejected, RejectReason
from server.ingest.process import IngestBatch
from server.matching.matcher import MatchAction
from server.settings import ServerSettings
from streetwatch.events import ViolationEvent
from streetwatch.messages import CommandReply, StatusMessage, TelemetryMessage

log = logging.getLogger(__name__)

#: A message whose locks were busy this many batches in a row is stored in a transaction that waits.
MAX_DEFERRALS = 3
#: PostgreSQL SQLSTATEs worth retrying at once: deadlock detected, serialization failure.
_RETRY_NOW = {"40P01", "40001"}


@dataclass(frozen=True, slots=True)
class Received:
    """One validated MQTT message waiting to be stored, and how to acknowledge it."""

    topic: str
    mid: int
    qos: int
    connection: int  # which connection delivered it: a message id is only valid on its own
    decoded: Decoded
    ack: AckKey | None = None  # what to tell the box once stored (None: nothing, or it may pass)
    deferrals: int = 0  # batches that left it because another worker held its locks

    def refused(self, reason: RejectReason, detail: str) -> Received:
        """The same message, now to be recorded as refused for ``reason`` (still acknowledged)."""
        return replace(self, decoded=Rejected(reason, detail[:500]))


class StoreOutcome(Enum):
    committed = "committed"
    deferred = "deferred"
    outage_retry = "outage_retry"
    isolate_one = "isolate_one"


@dataclass(frozen=True, slots=True)
class StoreResult:
    """What one :meth:`BatchStorer.store` attempt did."""

    outcome: StoreOutcome
    done: list[Received] = field(default_factory=list)  # committed: stored, duplicates, refusals
    deferred: list[Received] = field(default_factory=list)  # left for a later batch (locks busy)
    failure: Exception | None = None  # why nothing was stored (outage_retry, isolate_one)
    conflict: bool = False  # outage_retry after a deadlock or serialization failure


@dataclass
class WorkerStats:
    """Counters since the worker started (the database keeps the lasting ones)."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    retries: int = 0
    deferred: int = 0  # messages put off to a later batch because another worker held their locks
    cases_opened: int = 0
    acked_ids: int = 0  # event ids and image hashes acknowledged to boxes (StoredAck)
    ack_messages: int = 0


class BatchStorer:
    """Stores batches of :class:`Received` messages through :class:`IngestBatch`."""

    def __init__(
        self,
        settings: ServerSettings,
        sessions: sessionmaker[Session],
        clock: Callable[[], datetime],
        stats: WorkerStats | None = None,
    ) -> None:
        self.settings = settings
        self._sessions = sessions
        self._clock = clock
        self.stats = stats or WorkerStats()

    def store(self, batch: list[Received], *, wait: bool = False) -> StoreResult:
        """One attempt at storing ``batch`` in one transaction (see the module docstring)."""
        try:
            deferred, withheld = self._store(batch, wait=wait)
        except DBAPIError as exc:
            if _sqlstate(exc) in _RETRY_NOW:
                return StoreResult(StoreOutcome.outage_retry, failure=exc, conflict=True)
            if not isinstance(exc, IntegrityError | DataError) or _is_failed_rejection(batch):
                return StoreResult(StoreOutcome.outage_retry, failure=exc)
            return StoreResult(StoreOutcome.isolate_one, failure=exc)
        except Exception as exc:
            return StoreResult(StoreOutcome.isolate_one, failure=exc)
        done = [
            replace(m, ack=None) if i in withheld else m for i, m in enumerate(batch) if i not in deferred
        ]
        later = [batch[i] for i in sorted(deferred)]
        self.stats.received += len(done)
        self.stats.batches += 1
        self.stats.deferred += len(later)
        outcome = StoreOutcome.deferred if later else StoreOutcome.committed
        return StoreResult(outcome, done=done, deferred=later)

    def _store(self, batch: list[Received], *, wait: bool) -> tuple[set[int], set[int]]:
        """Store what of the batch can be stored now; return the indices left for later, and
        those whose acknowledgement the batch withheld (refused for a reason that may pass).

        With ``wait`` false, messages whose locks another worker holds are not waited for:
        the rest is committed (and acked) at once and those few go to the next batch. Two
        workers in the same streets thus overlap instead of taking turns by batch.
        """
        stored = duplicates = opened = 0
        rejected: Counter[str] = Counter()
        withheld: set[int] = set()
        with self._sessions.begin() as session:
            ingest = IngestBatch(session, self.settings, self._clock())
            names = [_lock_names(ingest, m.decoded) for m in batch]
            wanted = set().union(*names)
            if wait:
                locks.acquire(session, wanted)
                deferred: set[int] = set()
            else:
                held = locks.try_acquire(session, wanted)
                deferred = {i for i, needed in enumerate(names) if not needed <= held}
            ingest.preload(
                m.decoded
                for i, m in enumerate(batch)
                if isinstance(m.decoded, ViolationEvent) and i not in deferred
            )
            for index, message in enumerate(batch):
                if index in deferred:
                    continue
                item = message.decoded
                if isinstance(item, ViolationEvent):
                    outcome = ingest.add_event(item)
                    stored += outcome.stored
                    duplicates += not outcome.stored
                    opened += outcome.action is not None and outcome.action is not MatchAction.join
                elif isinstance(item, EvidenceReceived):
                    if ingest.add_evidence(item.stored, item.device_id) is False:
                        withheld.add(index)  # refused inside the batch for a reason that may pass
                elif isinstance(item, StatusMessage):
                    ingest.add_status(item)
                elif isinstance(item, TelemetryMessage):
                    ingest.add_telemetry(item)
                elif isinstance(item, CommandReply):
                    record_reply(session, item, self._clock())
                else:
                    ingest.reject(item.reason.value, message.topic, item.detail)
                    rejected[item.reason.value] += 1
            ingest.finish()
        for index, message in enumerate(batch):
            if index not in deferred and isinstance(message.decoded, Rejected):
                item = message.decoded
                log.warning("ingest: rejected %s (%s): %s", message.topic, item.reason.value, item.detail)
        self.stats.stored += stored
        self.stats.duplicates += duplicates
        self.stats.cases_opened += opened
        self.stats.rejected.update(rejected)
        return deferred, withheld


def _lock_names(batch: IngestBatch, item: Decoded) -> set[str]:
    if isinstance(item, ViolationEvent):
        return batch.lock_names(events=[item])
    if isinstance(item, EvidenceReceived):
        return batch.lock_names(evidence_shas=[item.stored.sha256])
    if isinstance(item, TelemetryMessage):
        return batch.lock_names(telemetry=[item])
    return set()


def _is_failed_rejection(batch: list[Received]) -> bool:
    return len(batch) == 1 and isinstance(batch[0].decoded, Rejected)


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)

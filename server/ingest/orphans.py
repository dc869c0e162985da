"""Evidence images no event names ("orphans"): a quota per device, and their clean-up.

A box sends an event's images just before the event, so for a moment every image is an
orphan; one whose event never comes is kept for ``orphan_evidence_grace_s`` and then
deleted. Without bounds a device could fill the evidence disk with images it never
refers to (150 images, 311 MB in 5 s), so each device may hold at most
``max_orphan_evidence`` images and ``max_orphan_evidence_bytes`` of them; more are refused
as ``evidence_quota`` until its events name them or the clean-up removes them.

An image counts as named when an event *of the device that sent it* names it, received
no earlier than the grace period before the image: events follow their images within
seconds, and two boxes never send the same JPEG bytes.

Known gaps, both rare and after the fact: a file written by ``decode`` whose message is then
refused for another reason (``processing_error``) stays on disk without a row; and an orphan
re-sent at the very moment the clean-up deletes it is lost with it.

The clean-up (:func:`prune_orphan_evidence`, run with the telemetry pruning) looks only at
images older than the grace period that it has not already found named: it marks the named
ones ``referenced_at`` (never looked at again) and deletes the rest, rows and files.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Event, Evidence
from server.evidence_store import EvidenceStore, StoredEvidence
from server.ingest.messages import Rejected, RejectReason
from server.settings import IngestLimits
from streetwatch.errors import StorageError

log = logging.getLogger(__name__)

#: Images looked at per clean-up transaction.
PRUNE_CHUNK = 1000


@dataclass
class _Usage:
    count: int
    size_bytes: int


class OrphanQuota:
    """The orphan images of each device, as one batch sees them (the database, plus the batch).

    Images a batch accepts are counted as orphans until the batch ends even if an event later in
    the batch names them: a pessimistic count that costs one query per device and batch.
    """

    def __init__(self, limits: IngestLimits, store: EvidenceStore) -> None:
        self.limits = limits
        self.store = store
        self._usage: dict[str, _Usage] = {}
        self._admitted: set[str] = set()

    def admit(
        self, session: Session, stored: StoredEvidence, device_id: str, now: datetime
    ) -> Rejected | None:
        """None when the image may be stored; otherwise why not (its file is removed if new)."""
        if stored.sha256 in self._admitted or session.get(Evidence, stored.sha256) is not None:
            return None  # already stored: a re-send costs nothing
        usage = self._usage.get(device_id)
        if usage is None:
            usage = self._usage[device_id] = orphan_usage(session, device_id, self.limits, now)
        limits = self.limits
        if usage.count + 1 > limits.max_orphan_evidence:
            refusal = f"{device_id} already has {usage.count} images no event names; the limit is "
            refusal += f"{limits.max_orphan_evidence}"
        elif usage.size_bytes + stored.size_bytes > limits.max_orphan_evidence_bytes:
            refusal = (
                f"{device_id} already has {usage.size_bytes:,} bytes of images no event names; this "
                f"{stored.size_bytes:,}-byte image would pass the limit of "
                f"{limits.max_orphan_evidence_bytes:,}"
            )
        elif not self.store.path_of(stored.path).exists():
            # The file went with an earlier refusal of the same bytes in a batch that was retried.
            return Rejected(RejectReason.storage_error, f"{stored.path} is no longer in the evidence store")
        else:
            usage.count += 1
            usage.size_bytes += stored.size_bytes
            self._admitted.add(stored.sha256)
            return None
        # No row names the file (checked above, under the image's advisory lock on PostgreSQL): it
        # goes, whether this delivery wrote it or an earlier one that was never stored. A batch
        # that accepts the same bytes later finds it missing and refuses it for a re-send.
        self._remove(stored.path)
        log.warning("ingest: refused evidence %s (evidence_quota): %s", stored.sha256, refusal)
        return Rejected(RejectReason.evidence_quota, refusal)

    def _remove(self, path: str) -> None:
        try:
            self.store.remove(path)
        except StorageError as exc:
            log.warning("orphan evidence: %s", exc)


def orphan_usage(session: Session, device_id: str, limits: IngestLimits, now: datetime) -> _Usage:
    """The images of ``device_id`` that no event of it names yet: how many, how many bytes."""
    rows = session.execute(
        select(Evidence.sha256, Evidence.size_bytes, Evidence.received_at).where(
            Evidence.device_id == device_id, Evidence.referenced_at.is_(None)
        )
    ).all()
    if not rows:
        return _Usage(0, 0)
    grace = timedelta(seconds=limits.orphan_evidence_grace_s)
    named = _named_by_events(session, [device_id], min(r.received_at for r in rows) - grace)
    orphans = [r for r in rows if r.sha256 not in named]
    return _Usage(len(orphans), sum(r.size_bytes for r in orphans))


def prune_orphan_evidence(
    sessions: sessionmaker[Session], store: EvidenceStore, limits: IngestLimits, now: datetime
) -> int:
    """Delete images no event named within the grace period (rows, then files); return how many."""
    grace = timedelta(seconds=limits.orphan_evidence_grace_s)
    cutoff = now - grace
    removed = 0
    while True:
        with sessions.begin() as session:
            rows = session.execute(
                select(Evidence.sha256, Evidence.path, Evidence.device_id, Evidence.received_at)
                .where(Evidence.referenced_at.is_(None), Evidence.received_at < cutoff)
                .order_by(Evidence.received_at)
                .limit(PRUNE_CHUNK)
            ).all()
            if not rows:
                return removed
            named = _named_by_events(
                session, {r.device_id for r in rows}, min(r.received_at for r in rows) - grace
            )
            kept = [r.sha256 for r in rows if r.sha256 in named]
            orphans = [r for r in rows if r.sha256 not in named]
            if kept:
                session.execute(update(Evidence).where(Evidence.sha256.in_(kept)).values(referenced_at=now))
            if orphans:
                session.execute(
                    delete(Evidence).where(
                        Evidence.sha256.in_([r.sha256 for r in orphans]), Evidence.referenced_at.is_(None)
                    )
                )
        # Files go after the commit: a rollback must not leave rows without their files.
        for row in orphans:
            try:
                store.remove(row.path)
            except StorageError as exc:
                log.warning("orphan evidence: %s", exc)
        removed += len(orphans)
        if len(rows) < PRUNE_CHUNK:
            return removed


def _named_by_events(session: Session, devices: Iterable[str], since: datetime) -> set[str]:
    """SHA-256 of every image named by an event of ``devices`` received since ``since``."""
    named: set[str] = set()
    rows = session.execute(
        select(Event.frame_sha256, Event.crop_sha256, Event.clean_sha256).where(
            Event.device_id.in_(sorted(devices)), Event.received_at >= since
        )
    )
    for row in rows:
        named.update(sha for sha in row if sha is not None)
    return named

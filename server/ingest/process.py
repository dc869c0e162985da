"""Storing what edge boxes send, inside one database transaction.

    with sessions.begin() as session:
        outcome = ingest_event(session, event, now)

The MQTT worker uses :class:`IngestBatch` to store a few hundred messages per
transaction (it acknowledges them only after the commit); tests and benchmarks
can call :func:`ingest_event` directly. Nothing here commits.

An event is stored once: a repeated ``event_id`` (a redelivery, or a re-send
from the box's outbox) is reported as a duplicate and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.orm import Session

from server.cases import service
from server.cases.coverage import mark_possibly_resolved
from server.cases.second_pass import confirm_sighting
from server.db.models import Case, CaseState, Event, Evidence, TelemetryPoint
from server.evidence_store import EvidenceStore, StoredEvidence
from server.ingest import locks
from server.ingest.case_cache import CaseCache, CaseRecord, chunks
from server.ingest.device_updates import DeviceUpdates, RejectionCounts, insert_ignore
from server.ingest.orphans import OrphanQuota
from server.ingest.pg_copy import copy_rows
from server.ingest.scope import SearchScope, search_scope
from server.matching.geohash import encode
from server.matching.matcher import MatchAction, match_event
from server.settings import CELL_PRECISION, ServerSettings
from server.signs.ingest import SignCheck
from server.signs.register import SignDecision, zone_title
from streetwatch.events import ViolationEvent, ViolationType
from streetwatch.messages import StatusMessage, TelemetryMessage
from streetwatch.topics import evidence_topic

_EVENTS = cast(Table, Event.__table__)


@dataclass(slots=True)
class IngestOutcome:
    """What happened to one event."""

    event_id: uuid.UUID
    stored: bool  # False: a duplicate of an event stored before; nothing changed
    # join / recurrence / new; None for a duplicate, or a sign sighting that opens no case
    action: MatchAction | None
    case: CaseRecord | None = None

    @property
    def case_id(self) -> int | None:
        """The event's case (a case opened by a batch has its id once the batch is finished)."""
        return None if self.case is None else self.case.id


class IngestBatch:
    """Messages stored in one transaction, with the lookups they share.

    Call :meth:`lock` first with everything the batch will store (it takes the
    PostgreSQL advisory locks; the worker may instead take them without waiting via
    :func:`server.ingest.locks.try_acquire`), then :meth:`preload` with its events,
    then the ``add_*`` methods in message order, then :meth:`finish`.
    """

    def __init__(self, session: Session, settings: ServerSettings, now: datetime) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self._stored: set[uuid.UUID] = set()
        self._known: set[uuid.UUID] = set()  # already in the database before this batch
        self._prefetched: set[uuid.UUID] = set()
        self.cases = CaseCache()  # cases preloaded or opened by this batch
        self._event_rows: list[tuple[dict[str, Any], CaseRecord | None]] = []
        self._evidence_rows: dict[str, dict[str, Any]] = {}  # by sha256; known ones are skipped
        self.devices = DeviceUpdates()
        self.rejections = RejectionCounts()
        self.orphans = OrphanQuota(settings.limits, EvidenceStore(settings.evidence_dir))
        self.marked_possibly_resolved: list[int] = []
        # Awaiting sightings this batch saw on a second pass: (case, the event, its first sighting).
        self._confirming: list[tuple[CaseRecord, ViolationEvent, datetime]] = []
        # The signboard register (server.signs): known signs open no case.
        self.signs = SignCheck(session, settings.signs, EvidenceStore(settings.evidence_dir), now)

    # -- locking ---------------------------------------------------------------------------

    def scope(self, event: ViolationEvent) -> SearchScope:
        """Where matching ``event`` looks for cases (what :meth:`lock` locks and :meth:`preload` reads)."""
        return search_scope(event, self.settings.rule(event.violation_type))

    def lock_names(
        self,
        events: Iterable[ViolationEvent] = (),
        evidence_shas: Iterable[str] = (),
        telemetry: Iterable[TelemetryMessage] = (),
    ) -> set[str]:
        """The advisory lock names storing these messages needs."""
        names: set[str] = set()
        for event in events:
            names |= locks.scope_lock_names(self.scope(event))
        for sha in evidence_shas:
            names |= locks.evidence_lock_names(sha)
        for message in telemetry:
            names |= locks.telemetry_lock_names(message, self.settings)
        return names

    def lock(
        self,
        events: Iterable[ViolationEvent] = (),
        evidence_shas: Iterable[str] = (),
        telemetry: Iterable[TelemetryMessage] = (),
    ) -> int:
        """Take every advisory lock the batch needs, in one sorted order (no-op on SQLite)."""
        return locks.acquire(self.session, self.lock_names(events, evidence_shas, telemetry))

    def preload(self, events: Iterable[ViolationEvent]) -> None:
        """Fetch, in a handful of queries for the whole batch, what matching these events needs.

        That is: which events are already stored, and the cases their search scopes reach
        (:meth:`CaseCache.preload`). Matching then runs in memory, event by event. Events
        not preloaded are preloaded one by one on arrival.
        """
        fresh = [e for e in events if e.event_id not in self._prefetched]
        if not fresh:
            return
        ids = list({e.event_id for e in fresh})
        for chunk in chunks(ids):
            self._known.update(self.session.scalars(select(Event.event_id).where(Event.event_id.in_(chunk))))
        self._prefetched.update(ids)
        join_from = finished_from = self.now
        awaiting_from: datetime | None = None
        for event in fresh:
            rule = self.settings.rule(event.violation_type)
            at = min(event.observed_at, self.now)
            join_from = min(join_from, at - timedelta(seconds=rule.join_window_s))
            finished_from = min(finished_from, at - timedelta(seconds=rule.recurrence_window_s))
            if rule.second_pass_gap_s > 0:
                oldest = at - timedelta(seconds=rule.second_pass_expiry_s)
                awaiting_from = oldest if awaiting_from is None else min(awaiting_from, oldest)
        scopes = [self.scope(e) for e in fresh]
        self.cases.preload(self.session, scopes, join_from, finished_from, awaiting_from)
        if self.settings.signs.enabled:
            self.signs.preload(scopes)  # register entries and track sightings, for signboards only

    # -- events ------------------------------------------------------------------------------

    def add_event(self, event: ViolationEvent, raw: dict[str, Any] | None = None) -> IngestOutcome:
        """Store ``event`` and attach it to a case (or report it as a duplicate)."""
        self.preload([event])
        if event.event_id in self._stored or event.event_id in self._known:
            return IngestOutcome(event.event_id, False, None)
        rule = self.settings.rule(event.violation_type)
        scope = search_scope(event, rule)
        candidates = self.cases.candidates(scope)
        if rule.one_object_per_case:
            candidates = self.cases.seen_together(self.session, event, candidates)
        sign = None
        if event.violation_type is ViolationType.illegal_signboard and self.settings.signs.enabled:
            sign, fp = self.signs.decide(event, scope, rule)
            if not sign.outcome.opens_case:  # a known sign, or waiting for its crop: no case
                self.signs.record(event, sign, None, fp)
                self._event_rows.append((_event_row(event, self.now, raw), None))
                self._stored.add(event.event_id)
                self.devices.saw_event(event, self.now)
                return IngestOutcome(event.event_id, True, None)
            if sign.sign_id is not None:
                # The register entry is the dispatcher's standing decision on the sign it shows;
                # a case rejected (as permitted) then must not swallow a sign that changed.
                candidates = [c for c in candidates if c.state is not CaseState.rejected]
        decision = match_event(event, candidates, rule, self.now)
        if decision.action is MatchAction.join:
            assert decision.case_id is not None
            record = self.cases.records[decision.case_id]
            if record.state is CaseState.possibly_resolved and record.id is not None:
                self._seen_again(record, event)
            elif decision.confirms:
                # Confirmed once the case is written (it may have been opened by this batch).
                self._confirming.append((record, event, record.first_event_at))
                record.state = CaseState.new
        else:
            state = CaseState.awaiting_recurrence if decision.awaits_second_pass else CaseState.new
            record = self.cases.open(event, rule, self.now, recurrence_of=decision.case_id, state=state)
            if record.new_values is not None:
                title = self._sign_title(event, sign)
                if title is not None:
                    record.new_values["title"] = title
        if sign is not None:
            self.signs.record(event, sign, record, None)
        record.count_event(event, self.now)
        self._event_rows.append((_event_row(event, self.now, raw), record))
        self._stored.add(event.event_id)
        self.cases.assign_track(event.device_id, event.track_id, record.key)
        self.devices.saw_event(event, self.now)
        return IngestOutcome(event.event_id, True, decision.action, record)

    def _sign_title(self, event: ViolationEvent, sign: SignDecision | None) -> str | None:
        """A signboard case's title: what the register decided, or with the register off, the
        no-sign zone it is in (None: the usual title)."""
        if sign is not None:
            return sign.case_title(event)
        if event.violation_type is ViolationType.illegal_signboard:
            return zone_title(event, self.settings.signs)
        return None

    def _seen_again(self, record: CaseRecord, event: ViolationEvent) -> None:
        """A possibly-resolved case seen again goes back to its state (rare: the ORM way)."""
        case = self.session.get(Case, record.id)
        if case is not None:
            service.seen_again(self.session, case, event, self.now)
            record.state = case.state

    # -- evidence, status, telemetry ---------------------------------------------------------

    def add_evidence(self, stored: StoredEvidence, device_id: str) -> bool:
        """Record an image already written to the evidence store (inserted by :meth:`finish`).

        False when the device's quota of images no event names refuses it (counted as a rejection).
        """
        self.devices.heard_from(device_id, self.now, self.now)
        refused = self.orphans.admit(self.session, stored, device_id, self.now)
        if refused is not None:
            self.reject(refused.reason.value, evidence_topic(device_id, stored.sha256), refused.detail)
            return False
        self._evidence_rows.setdefault(stored.sha256, stored.row(device_id, self.now))
        return True

    def add_status(self, status: StatusMessage) -> None:
        self.devices.status(status, self.now)

    def add_telemetry(self, message: TelemetryMessage) -> list[int]:
        """Store the coverage track (thinned) and mark cases the patrol passed without seeing."""
        points = _thin(message.coverage, self.settings.limits.max_telemetry_points)
        for point in points:
            self.session.add(
                TelemetryPoint(
                    device_id=message.device_id,
                    at=point.at,
                    lat=point.lat,
                    lon=point.lon,
                    cell=encode(point.lat, point.lon, CELL_PRECISION),
                )
            )
        self.devices.telemetry(message, self.now)
        if points:
            self.devices.position(message.device_id, points[-1].lat, points[-1].lon, points[-1].at, self.now)
        # Coverage reads cases and events from the database: this batch's events count too.
        self._write_events()
        marked = mark_possibly_resolved(self.session, message.device_id, points, self.settings, self.now)
        for case_id in marked:
            if case_id in self.cases.records:
                self.cases.records[case_id].state = CaseState.possibly_resolved
        self.marked_possibly_resolved.extend(marked)
        return marked

    def reject(self, reason: str, topic: str, detail: str) -> None:
        """Count a refused message under ``reason`` (written by :meth:`finish`)."""
        self.rejections.add(reason, topic, detail)

    # -- end of batch ------------------------------------------------------------------------

    def finish(self) -> None:
        """Write the events, then device and rejection updates (sorted, so workers lock rows in one order)."""
        self._write_events()
        if self._evidence_rows:
            insert_ignore(
                self.session, Evidence, [self._evidence_rows[k] for k in sorted(self._evidence_rows)]
            )
            self._evidence_rows = {}
        self.devices.write(self.session, self.now)
        self.rejections.write(self.session, self.now)
        self.session.flush()

    def _write_events(self) -> None:
        """Write the cases and events added so far (callable several times per batch)."""
        self.session.flush()  # ORM changes (evidence, telemetry, workflow records) first
        self.cases.write(self.session, self.now)  # opened cases get their ids here, all at once
        for sighting, event, first_seen in self._confirming:
            assert sighting.id is not None
            rule = self.settings.rule(event.violation_type)
            confirm_sighting(self.session, sighting.id, event, first_seen, rule, self.now)
        self._confirming = []
        if self._event_rows:
            rows = []
            for row, record in self._event_rows:
                row["case_id"] = record.id if record is not None else None
                rows.append(row)
            if self.session.get_bind().dialect.name == "postgresql":
                copy_rows(self.session, _EVENTS, rows)
            else:
                self.session.connection().execute(insert(_EVENTS), rows)
            self._event_rows = []
        self.signs.write()  # sightings name their events and cases: after both


def ingest_event(
    session: Session,
    event: ViolationEvent,
    now: datetime,
    settings: ServerSettings | None = None,
    raw: dict[str, Any] | None = None,
) -> IngestOutcome:
    """Store one event and attach it to a case, in the caller's transaction."""
    batch = IngestBatch(session, settings or ServerSettings(), now)
    batch.lock(events=[event])
    outcome = batch.add_event(event, raw)
    batch.finish()
    return outcome


def prune_telemetry(session: Session, settings: ServerSettings, now: datetime) -> int:
    """Delete coverage older than the retention; return how many points went."""
    cutoff = now - timedelta(hours=settings.limits.telemetry_retention_h)
    result = session.execute(delete(TelemetryPoint).where(TelemetryPoint.at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def _event_row(event: ViolationEvent, now: datetime, raw: dict[str, Any] | None) -> dict[str, Any]:
    position = event.place  # the violation's place; the camera's position stays in the raw event
    evidence = event.evidence
    return dict(
        event_id=event.event_id,
        device_id=event.device_id,
        camera_id=event.camera_id,
        track_id=event.track_id,
        sequence=event.sequence,
        lifecycle=event.lifecycle.value,
        violation_type=event.violation_type.value,
        candidate=event.candidate,
        detector_class=event.detector_class,
        score=event.score,
        box=list(event.box),
        frame_width=event.frame_width,
        frame_height=event.frame_height,
        observed_at=event.observed_at,
        first_seen_at=event.first_seen_at,
        frames_seen=event.frames_seen,
        lat=position.lat if position else None,
        lon=position.lon if position else None,
        accuracy_m=position.accuracy_m if position else None,
        heading_deg=position.heading_deg if position else None,
        speed_mps=position.speed_mps if position else None,
        position_source=position.source if position else None,
        model_name=event.model.name,
        model_version=event.model.version,
        config_name=event.config.name if event.config else None,
        config_version=event.config.version if event.config else None,
        frame_sha256=evidence.frame_sha256 if evidence else None,
        crop_sha256=evidence.crop_sha256 if evidence else None,
        clean_sha256=evidence.clean_sha256 if evidence else None,
        evidence_captured_at=evidence.captured_at if evidence else None,
        received_at=now,
        attributes=event.attributes.model_dump(mode="json", exclude_none=True) if event.attributes else None,
        raw=raw if raw is not None else event.model_dump(mode="json"),
    )


def _thin(points: list[Any], limit: int) -> list[Any]:
    if len(points) <= limit:
        return list(points)
    step = len(points) / limit
    kept = [points[int(i * step)] for i in range(limit - 1)]
    kept.append(points[-1])  # keep the newest: it is the device's last position
    return kept

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
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.cases import service
from server.cases.coverage import coverage_cells, mark_possibly_resolved
from server.db.models import Case, CaseState, Device, DeviceStatus, Event, Evidence, Rejection, TelemetryPoint
from server.evidence_store import StoredEvidence
from server.ingest import locks
from server.matching.geohash import cells_covering, encode
from server.matching.matcher import FINISHED_STATES, JOINABLE_STATES, CaseCandidate, MatchAction, match_event
from server.settings import CELL_PRECISION, ServerSettings
from streetwatch.events import ViolationEvent, ViolationType
from streetwatch.messages import StatusMessage, TelemetryMessage

_JOINABLE = [s.value for s in JOINABLE_STATES]
_FINISHED = [s.value for s in FINISHED_STATES]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What happened to one event."""

    event_id: uuid.UUID
    stored: bool  # False: a duplicate of an event stored before; nothing changed
    case_id: int | None
    action: MatchAction | None  # join / recurrence / new; None for a duplicate


class IngestBatch:
    """Messages stored in one transaction, with the lookups they share.

    Call :meth:`lock` first with everything the batch will store (it takes the
    PostgreSQL advisory locks), then the ``add_*`` methods, then :meth:`finish`.
    """

    def __init__(self, session: Session, settings: ServerSettings, now: datetime) -> None:
        self.session = session
        self.settings = settings
        self.now = now
        self._stored: set[uuid.UUID] = set()
        self._known: set[uuid.UUID] = set()  # already in the database before this batch
        self._prefetched: set[uuid.UUID] = set()
        # Cases this batch opened or joined, by cell and by opening track: the database copy of
        # their last_event_at may be older than the one in memory, so they are offered as
        # candidates from here rather than trusted to the time filter of the query.
        self._touched_by_cell: dict[tuple[str, str], set[int]] = {}
        self._touched_by_track: dict[tuple[str, str, uuid.UUID], set[int]] = {}
        self._track_case: dict[tuple[str, uuid.UUID], int] = {}
        self._case_devices: set[tuple[int, str]] = set()
        self._devices: dict[str, _DeviceSeen] = {}
        self._rejections: dict[str, _RejectionSeen] = {}
        self.marked_possibly_resolved: list[int] = []

    # -- locking -----------------------------------------------------------------------------

    def lock(
        self,
        events: Iterable[ViolationEvent] = (),
        evidence_shas: Iterable[str] = (),
        telemetry: Iterable[TelemetryMessage] = (),
    ) -> int:
        """Take every advisory lock the batch needs, in one sorted order (no-op on SQLite)."""
        names: set[str] = set()
        for event in events:
            names |= locks.event_lock_names(event, self.settings)
        names |= {f"evidence:{sha}" for sha in evidence_shas}
        static_types = [t.value for t, r in self.settings.matching.items() if not r.moving]
        for message in telemetry:
            names |= locks.cell_lock_names(coverage_cells(message.coverage, self.settings), static_types)
        return locks.acquire(self.session, names)

    def prefetch(self, event_ids: Iterable[uuid.UUID]) -> None:
        """Look up in one query which of these events are already stored."""
        ids = list(set(event_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            self._known.update(self.session.scalars(select(Event.event_id).where(Event.event_id.in_(chunk))))
        self._prefetched.update(ids)

    # -- events ------------------------------------------------------------------------------

    def add_event(self, event: ViolationEvent, raw: dict[str, Any] | None = None) -> IngestOutcome:
        """Store ``event`` and attach it to a case (or report it as a duplicate)."""
        # Pending rows are flushed once, in finish(); queries here must not flush them one by one.
        with self.session.no_autoflush:
            if self._is_duplicate(event.event_id):
                return IngestOutcome(event.event_id, False, None, None)
            rule = self.settings.rule(event.violation_type)
            candidates = self._candidates(event)
            decision = match_event(event, candidates, rule, self.now)
            if decision.action is MatchAction.join:
                assert decision.case_id is not None
                case = self.session.get(Case, decision.case_id)
                assert case is not None
                service.seen_again(self.session, case, event, self.now)
            else:
                case = service.open_case(self.session, event, rule, self.now, recurrence_of=decision.case_id)
                self._remember(case)
            new_device = self._new_device_for(case.id, event.device_id)
            service.add_event(case, event, new_device=new_device, now=self.now)
            self.session.add(_event_row(event, case.id, self.now, raw))
        self._stored.add(event.event_id)
        self._track_case[(event.device_id, event.track_id)] = case.id
        self._touch_device(event.device_id, event.observed_at, event)
        return IngestOutcome(event.event_id, True, case.id, decision.action)

    def _remember(self, case: Case) -> None:
        if case.cell is not None:
            self._touched_by_cell.setdefault((case.violation_type, case.cell), set()).add(case.id)
        if case.device_id is not None and case.track_id is not None:
            key = (case.violation_type, case.device_id, case.track_id)
            self._touched_by_track.setdefault(key, set()).add(case.id)

    def _is_duplicate(self, event_id: uuid.UUID) -> bool:
        if event_id in self._stored or event_id in self._known:
            return True
        if event_id in self._prefetched:
            return False
        return self.session.get(Event, event_id) is not None

    def _candidates(self, event: ViolationEvent) -> list[CaseCandidate]:
        rule = self.settings.rule(event.violation_type)
        at = min(event.observed_at, self.now)
        join_from = at - timedelta(seconds=rule.join_window_s)
        finished_from = at - timedelta(seconds=rule.recurrence_window_s)
        recent = or_(
            and_(Case.state.in_(_JOINABLE), Case.last_event_at >= join_from),
            and_(
                Case.state.in_(_FINISHED),
                or_(Case.closed_at >= finished_from, Case.resolved_at >= finished_from),
            ),
        )
        query = select(Case).where(Case.violation_type == event.violation_type.value, recent)
        kind = event.violation_type.value
        if rule.moving or event.position is None:
            query = query.where(Case.device_id == event.device_id, Case.track_id == event.track_id)
            touched = set(self._touched_by_track.get((kind, event.device_id, event.track_id), ()))
        else:
            cells = cells_covering(event.position.lat, event.position.lon, rule.radius_m, CELL_PRECISION)
            query = query.where(Case.cell.in_(cells))
            touched = set()
            for cell in cells:
                touched |= self._touched_by_cell.get((kind, cell), set())
        cases = {case.id: case for case in self.session.scalars(query)}
        for case_id in touched - cases.keys():
            touched_case = self.session.get(Case, case_id)
            if touched_case is not None:
                cases[case_id] = touched_case
        track_case_id = self._case_of_track(event.device_id, event.track_id)
        if track_case_id is not None and track_case_id not in cases:
            track_case = self.session.get(Case, track_case_id)
            if track_case is not None:
                cases[track_case.id] = track_case
        for case in cases.values():
            self._remember(case)
        return [_candidate(case, same_track=case.id == track_case_id) for case in cases.values()]

    def _case_of_track(self, device_id: str, track_id: uuid.UUID) -> int | None:
        key = (device_id, track_id)
        if key not in self._track_case:
            case_id = self.session.scalar(
                select(Event.case_id)
                .where(Event.device_id == device_id, Event.track_id == track_id, Event.case_id.is_not(None))
                .order_by(Event.observed_at.desc())
                .limit(1)
            )
            if case_id is None:
                return None
            self._track_case[key] = case_id
        return self._track_case[key]

    def _new_device_for(self, case_id: int, device_id: str) -> bool:
        key = (case_id, device_id)
        if key in self._case_devices:
            return False
        # Every event of this batch adds its key, so only earlier batches are left to look at.
        self._case_devices.add(key)
        seen = self.session.scalar(
            select(Event.event_id).where(Event.case_id == case_id, Event.device_id == device_id).limit(1)
        )
        return seen is None

    # -- evidence, status, telemetry ---------------------------------------------------------

    def add_evidence(self, stored: StoredEvidence, device_id: str) -> bool:
        """Record an image already written to the evidence store; False if it was known."""
        self._touch_device(device_id, self.now, None)
        if self.session.get(Evidence, stored.sha256) is not None:
            return False
        self.session.add(
            Evidence(
                sha256=stored.sha256,
                size_bytes=stored.size_bytes,
                content_type=stored.content_type,
                path=stored.path,
                width=stored.width,
                height=stored.height,
                device_id=device_id,
                received_at=self.now,
            )
        )
        self.session.flush()
        return True

    def add_status(self, status: StatusMessage) -> None:
        seen = self._touch_device(status.device_id, status.at, None)
        if seen.status_at is None or status.at >= seen.status_at:
            seen.status = status.state
            seen.status_at = status.at
            seen.software_version = status.software_version
            seen.models = [m.model_dump() for m in status.models]

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
        seen = self._touch_device(message.device_id, message.at, None)
        if points:
            last = points[-1]
            seen.position = (last.lat, last.lon, last.at)
        self.session.flush()
        marked = mark_possibly_resolved(self.session, message.device_id, points, self.settings, self.now)
        self.marked_possibly_resolved.extend(marked)
        return marked

    def reject(self, reason: str, topic: str, detail: str) -> None:
        """Count a refused message under ``reason`` (written by :meth:`finish`)."""
        seen = self._rejections.setdefault(reason, _RejectionSeen())
        seen.count += 1
        seen.last_topic = topic[:255]
        seen.last_detail = detail[:2000]

    # -- end of batch ------------------------------------------------------------------------

    def finish(self) -> None:
        """Write device and rejection updates (sorted, so concurrent workers lock rows in one order)."""
        self.session.flush()
        for device_id in sorted(self._devices):
            self._write_device(device_id, self._devices[device_id])
        for reason in sorted(self._rejections):
            self._write_rejection(reason, self._rejections[reason])
        self.session.flush()

    def _touch_device(self, device_id: str, at: datetime, event: ViolationEvent | None) -> _DeviceSeen:
        seen = self._devices.setdefault(device_id, _DeviceSeen())
        seen.last_seen_at = max(seen.last_seen_at or at, min(at, self.now))
        if event is not None:
            seen.events += 1
            if event.position is not None and (
                seen.position is None or event.observed_at >= seen.position[2]
            ):
                seen.position = (event.position.lat, event.position.lon, event.observed_at)
        return seen

    def _write_device(self, device_id: str, seen: _DeviceSeen) -> None:
        last_seen = seen.last_seen_at or self.now
        _insert_ignore(
            self.session,
            Device,
            {
                "device_id": device_id,
                "first_seen_at": last_seen,
                "last_seen_at": last_seen,
                "status": DeviceStatus.unknown.value,
                "event_count": 0,
            },
        )
        device = self.session.scalars(
            select(Device).where(Device.device_id == device_id).with_for_update()
        ).one()
        device.last_seen_at = max(device.last_seen_at, last_seen)
        device.event_count += seen.events
        if seen.position is not None and (
            device.last_position_at is None or seen.position[2] >= device.last_position_at
        ):
            device.last_lat, device.last_lon, device.last_position_at = seen.position
        if seen.status is not None and (
            device.status_at is None or (seen.status_at or self.now) >= device.status_at
        ):
            device.status = seen.status
            device.status_at = seen.status_at
            device.software_version = seen.software_version
            device.models = seen.models

    def _write_rejection(self, reason: str, seen: _RejectionSeen) -> None:
        _insert_ignore(
            self.session,
            Rejection,
            {"reason": reason, "count": 0, "last_at": self.now, "last_topic": "", "last_detail": ""},
        )
        self.session.execute(
            update(Rejection)
            .where(Rejection.reason == reason)
            .values(
                count=Rejection.count + seen.count,
                last_at=self.now,
                last_topic=seen.last_topic,
                last_detail=seen.last_detail,
            )
        )


@dataclass
class _DeviceSeen:
    last_seen_at: datetime | None = None
    events: int = 0
    position: tuple[float, float, datetime] | None = None
    status: str | None = None
    status_at: datetime | None = None
    software_version: str | None = None
    models: list[Any] | None = None


@dataclass
class _RejectionSeen:
    count: int = 0
    last_topic: str = ""
    last_detail: str = ""


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


def _candidate(case: Case, *, same_track: bool) -> CaseCandidate:
    state = CaseState(case.state)
    finished_at = case.closed_at if state is CaseState.closed else case.resolved_at
    return CaseCandidate(
        case_id=case.id,
        violation_type=ViolationType(case.violation_type),
        state=state,
        lat=case.lat,
        lon=case.lon,
        last_event_at=case.last_event_at,
        finished_at=finished_at if state in FINISHED_STATES else None,
        device_id=case.device_id,
        track_id=case.track_id,
        same_track=same_track,
    )


def _event_row(event: ViolationEvent, case_id: int, now: datetime, raw: dict[str, Any] | None) -> Event:
    position = event.position
    evidence = event.evidence
    return Event(
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
        frame_sha256=evidence.frame_sha256 if evidence else None,
        crop_sha256=evidence.crop_sha256 if evidence else None,
        evidence_captured_at=evidence.captured_at if evidence else None,
        received_at=now,
        case_id=case_id,
        raw=raw if raw is not None else event.model_dump(mode="json"),
    )


def _thin(points: list[Any], limit: int) -> list[Any]:
    if len(points) <= limit:
        return list(points)
    step = len(points) / limit
    kept = [points[int(i * step)] for i in range(limit - 1)]
    kept.append(points[-1])  # keep the newest: it is the device's last position
    return kept


def _insert_ignore(session: Session, model: type[Any], values: dict[str, Any]) -> None:
    """INSERT that does nothing when the primary key exists (PostgreSQL and SQLite)."""
    dialect = session.get_bind().dialect.name
    factory = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(factory(model).values(**values).on_conflict_do_nothing())

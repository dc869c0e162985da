"""The cases one ingest batch looks at: loaded in bulk, matched in memory, written in bulk.

Ingest is the hot path (thousands of events per second), so it does not go
through ORM objects: a batch loads the few columns matching needs as plain
records, changes them in memory as events join, and writes them back with one
INSERT ... RETURNING for the cases it opened and one UPDATE per batch for the
cases it joined. The UPDATE adds to counters and moves times with SQL
expressions (``event_count = event_count + n``), so it never overwrites what
another worker or a dispatcher wrote meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, case, insert, or_, select, update
from sqlalchemy.orm import Session

from server.cases.service import creation_transition_values, new_case_values
from server.db.models import Case, CaseState, CaseTransition, Event
from server.db.types import UtcDateTime
from server.ingest.scope import SearchScope
from server.matching.matcher import FINISHED_STATES, JOINABLE_STATES, CaseCandidate
from server.settings import MatchingRule
from streetwatch.events import ViolationEvent, ViolationType

_CASES = cast(Table, Case.__table__)
_TRANSITIONS = cast(Table, CaseTransition.__table__)
_EVENTS = cast(Table, Event.__table__)
_JOINABLE = sorted(JOINABLE_STATES)
_FINISHED = sorted(FINISHED_STATES)
_ALL_TYPES = [t.value for t in ViolationType]
_COLUMNS = (
    Case.id,
    Case.violation_type,
    Case.state,
    Case.lat,
    Case.lon,
    Case.cell,
    Case.device_id,
    Case.track_id,
    Case.first_event_at,
    Case.last_event_at,
    Case.resolved_at,
    Case.closed_at,
    Case.max_score,
    Case.candidate,
    Case.merged_into,
)


@dataclass(frozen=True, slots=True)
class SeenBox:
    """One event of a case as ``CaseCache.seen_together`` compares it with a new one."""

    device_id: str
    camera_id: str
    track_id: uuid.UUID
    first_seen_at: datetime
    observed_at: datetime
    box: tuple[float, ...]  # x1, y1, x2, y2 in the frame

    def beside(self, event: ViolationEvent) -> bool:
        """Another object in the same frames as ``event``: the same camera of the same box, another
        track, at the same time, and apart in the frame. Boxes mostly inside one another are one
        object reported whole and in part (or a board and the panel on it): those still join. Two
        cameras of one box may see one sign at once: their tracks are not compared."""
        return (
            self.device_id == event.device_id
            and self.camera_id == event.camera_id
            and self.track_id != event.track_id
            and self.first_seen_at <= event.observed_at
            and event.first_seen_at <= self.observed_at
            and _shared(self.box, tuple(event.box)) < NESTED_SHARE
        )


#: Boxes of two tracks sharing at least this much of the smaller one are one object.
NESTED_SHARE = 0.5


@dataclass(slots=True)
class CaseRecord:
    """What a batch knows about one case, and what it changed."""

    key: int  # the case id, or a negative stand-in for a case this batch opened
    violation_type: str
    state: CaseState
    lat: float | None
    lon: float | None
    cell: str | None
    device_id: str | None
    track_id: uuid.UUID | None
    first_event_at: datetime
    last_event_at: datetime
    finished_at: datetime | None
    max_score: float
    candidate: bool
    id: int | None = None
    merged_into: int | None = None  # a duplicate's surviving case, after every later merge
    opened_by: tuple[ViolationEvent, int | None] | None = None  # (event, recurrence_of) when new
    new_values: dict[str, Any] | None = None
    events_added: int = 0
    devices: set[str] = field(default_factory=set)  # devices whose events this batch added
    # Each event this batch added: who saw what, when and where in the frame (``seen_together``).
    seen: list[SeenBox] = field(default_factory=list)

    def as_candidate(self, same_track: bool) -> CaseCandidate:
        return CaseCandidate(
            case_id=self.key,
            violation_type=ViolationType(self.violation_type),
            state=self.state,
            lat=self.lat,
            lon=self.lon,
            last_event_at=self.last_event_at,
            finished_at=self.finished_at,
            device_id=self.device_id,
            track_id=self.track_id,
            same_track=same_track,
            first_event_at=self.first_event_at,
            merged_into=self.merged_into,
        )

    def count_event(self, event: ViolationEvent, now: datetime) -> None:
        seen_at = min(event.observed_at, now)
        self.events_added += 1
        self.devices.add(event.device_id)
        self.seen.append(
            SeenBox(
                event.device_id,
                event.camera_id,
                event.track_id,
                event.first_seen_at,
                event.observed_at,
                tuple(event.box),
            )
        )
        self.last_event_at = max(self.last_event_at, seen_at)
        self.first_event_at = min(self.first_event_at, seen_at)
        self.max_score = max(self.max_score, event.score)
        self.candidate = self.candidate and event.candidate


class CaseCache:
    """Case records of one batch, indexed by geohash cell and by opening track.

    :meth:`preload` fetches, in a handful of queries for a whole batch, every case the
    batch's search scopes reach; :meth:`candidates` then answers from memory.
    """

    def __init__(self) -> None:
        self.records: dict[int, CaseRecord] = {}
        self._by_cell: dict[tuple[str, str], set[int]] = {}
        self._by_track: dict[tuple[str, str, uuid.UUID], set[int]] = {}
        self._track_case: dict[tuple[str, uuid.UUID], int] = {}  # the case a track's events are in
        self._next_new_key = -1

    def preload(
        self,
        session: Session,
        scopes: Iterable[SearchScope],
        join_from: datetime,
        finished_from: datetime,
        awaiting_from: datetime | None = None,
    ) -> None:
        """Load the recent cases in the scopes' cells or of their tracks, and each track's case.

        ``join_from`` / ``finished_from``: the oldest last event of a joinable case, and the
        oldest resolution or closing of a finished one, that any of the scopes can still match;
        ``awaiting_from``: the oldest first sighting of one awaiting a second pass (which waits
        longer than the join window; None: none beyond it).
        """
        cells: set[tuple[str, str]] = set()  # (violation type, geohash cell)
        devices: set[str] = set()
        tracks: set[uuid.UUID] = set()
        for scope in scopes:
            cells.update((scope.violation_type, cell) for cell in scope.cells)
            devices.add(scope.device_id)
            tracks.add(scope.track_id)
        recent = or_(
            and_(Case.state.in_(_JOINABLE), Case.last_event_at >= join_from),
            and_(
                Case.state.in_(_FINISHED),
                or_(Case.closed_at >= finished_from, Case.resolved_at >= finished_from),
            ),
        )
        if awaiting_from is not None:
            recent = or_(
                recent,
                and_(Case.state == CaseState.awaiting_recurrence, Case.first_event_at >= awaiting_from),
            )
        by_type: dict[str, list[str]] = {}
        for kind, cell in sorted(cells):
            by_type.setdefault(kind, []).append(cell)
        for kind, kind_cells in by_type.items():  # type = ? AND cell IN (...): the case index's order
            for chunk in chunks(kind_cells):
                self.load(session, Case.violation_type == kind, Case.cell.in_(chunk), recent)
        for device_chunk in chunks(sorted(devices)):
            for track_chunk in chunks(list(tracks)):
                self.load(
                    session,
                    Case.violation_type.in_(_ALL_TYPES),  # leads the (type, device, track) index
                    Case.device_id.in_(device_chunk),
                    Case.track_id.in_(track_chunk),
                    recent,
                )
                self._load_track_cases(session, device_chunk, track_chunk)
        missing = {c for c in self._track_case.values() if c not in self.records}
        for chunk in chunks(sorted(missing)):
            self.load(session, Case.id.in_(chunk))

    def _load_track_cases(self, session: Session, devices: list[str], tracks: list[uuid.UUID]) -> None:
        rows = session.execute(
            select(Event.device_id, Event.track_id, Event.case_id, Event.observed_at).where(
                Event.device_id.in_(devices), Event.track_id.in_(tracks), Event.case_id.is_not(None)
            )
        )
        latest: dict[tuple[str, uuid.UUID], tuple[datetime, int]] = {}
        for device_id, track_id, case_id, observed_at in rows:
            key = (device_id, track_id)
            if case_id is not None and (key not in latest or observed_at > latest[key][0]):
                latest[key] = (observed_at, case_id)
        for key, (_, case_id) in latest.items():
            self._track_case.setdefault(key, case_id)  # this batch's own assignment wins

    def candidates(self, scope: SearchScope) -> list[CaseCandidate]:
        """The loaded cases that could take an event of ``scope`` (the matcher decides which)."""
        if scope.by_place:
            keys = self.in_cells(scope.violation_type, scope.cells)
        else:
            keys = self.of_track(scope.violation_type, scope.device_id, scope.track_id)
        track_case = self._track_case.get((scope.device_id, scope.track_id))
        if track_case is not None and track_case in self.records:
            keys.add(track_case)
        return [self.records[k].as_candidate(same_track=k == track_case) for k in keys]

    def seen_together(
        self, session: Session, event: ViolationEvent, candidates: list[CaseCandidate]
    ) -> list[CaseCandidate]:
        """``candidates``, each marked when it holds an event of ``event``'s device under another
        track seen at the same time: another object in the same frames (a rule with
        ``one_object_per_case`` keeps them apart). Read from this batch and from stored events."""
        keys = [c.case_id for c in candidates if not c.same_track]
        if not keys:
            return candidates
        together = {key for key in keys if any(seen.beside(event) for seen in self.records[key].seen)}
        stored = [self.records[k].id for k in keys if k not in together and self.records[k].id is not None]
        for chunk in chunks(stored):
            rows = session.execute(
                select(
                    Event.case_id, Event.track_id, Event.first_seen_at, Event.observed_at, Event.box
                ).where(
                    Event.case_id.in_(chunk),
                    Event.device_id == event.device_id,  # (case_id, device_id) is indexed
                    Event.camera_id == event.camera_id,
                    Event.track_id != event.track_id,
                    Event.observed_at >= event.first_seen_at,
                    Event.first_seen_at <= event.observed_at,
                )
            )
            ids = {
                case_id
                for case_id, track, first, last, box in rows
                if SeenBox(event.device_id, event.camera_id, track, first, last, tuple(box)).beside(event)
            }
            together |= {k for k in keys if self.records[k].id in ids}
        return [
            replace(c, seen_together=c.case_id in together) if c.case_id in together else c
            for c in candidates
        ]

    def assign_track(self, device_id: str, track_id: uuid.UUID, key: int) -> None:
        """Record that the track's latest event went to case ``key`` (its next events look there)."""
        self._track_case[(device_id, track_id)] = key

    def load(self, session: Session, *conditions: ColumnElement[bool]) -> None:
        """Add the cases matching ``conditions`` (already known ones keep their in-memory state)."""
        for row in session.execute(select(*_COLUMNS).where(*conditions)):
            if row.id in self.records:
                continue
            state: CaseState = row.state
            finished = row.closed_at if state is CaseState.closed else row.resolved_at
            self._add(
                CaseRecord(
                    key=row.id,
                    id=row.id,
                    violation_type=row.violation_type,
                    state=state,
                    lat=row.lat,
                    lon=row.lon,
                    cell=row.cell,
                    device_id=row.device_id,
                    track_id=row.track_id,
                    first_event_at=row.first_event_at,
                    last_event_at=row.last_event_at,
                    finished_at=finished if state in FINISHED_STATES else None,
                    max_score=row.max_score,
                    candidate=row.candidate,
                    merged_into=None if row.merged_into is None else _survivor(session, row.merged_into),
                )
            )

    def open(
        self,
        event: ViolationEvent,
        rule: MatchingRule,
        now: datetime,
        recurrence_of: int | None,
        state: CaseState = CaseState.new,
    ) -> CaseRecord:
        """A case opened by ``event`` in ``state``; it is inserted by :meth:`write`."""
        values = new_case_values(event, rule, now, recurrence_of=recurrence_of, state=state)
        record = CaseRecord(
            key=self._next_new_key,
            violation_type=values["violation_type"],
            state=values["state"],
            lat=values["lat"],
            lon=values["lon"],
            cell=values["cell"],
            device_id=values["device_id"],
            track_id=values["track_id"],
            first_event_at=values["first_event_at"],
            last_event_at=values["last_event_at"],
            finished_at=None,
            max_score=0.0,
            candidate=values["candidate"],
            opened_by=(event, recurrence_of),
            new_values=values,
        )
        self._next_new_key -= 1
        self._add(record)
        return record

    def in_cells(self, violation_type: str, cells: Iterable[str]) -> set[int]:
        keys: set[int] = set()
        for cell in cells:
            keys |= self._by_cell.get((violation_type, cell), set())
        return keys

    def of_track(self, violation_type: str, device_id: str, track_id: uuid.UUID) -> set[int]:
        return set(self._by_track.get((violation_type, device_id, track_id), set()))

    def write(self, session: Session, now: datetime) -> None:
        """Insert the opened cases (with their creation records), then add to the joined ones.

        May be called more than once per batch; each call writes what changed since the last.
        """
        opened = [r for r in self.records.values() if r.new_values is not None and r.id is None]
        if opened:
            rows = []
            for record in opened:
                assert record.new_values is not None
                rows.append(
                    {
                        **record.new_values,
                        "first_event_at": record.first_event_at,
                        "last_event_at": record.last_event_at,
                        "event_count": record.events_added,
                        "device_count": len(record.devices),
                        "max_score": record.max_score,
                        "candidate": record.candidate,
                    }
                )
            connection = session.connection()
            inserted = connection.execute(
                insert(_CASES).returning(_CASES.c.id, sort_by_parameter_order=True), rows
            )
            ids = [int(case_id) for case_id in inserted.scalars()]
            transitions = []
            for record, case_id in zip(opened, ids, strict=True):
                record.id = case_id
                assert record.opened_by is not None
                event, recurrence_of = record.opened_by
                assert record.new_values is not None
                opened_in = record.new_values["state"]
                transitions.append(creation_transition_values(case_id, event, now, recurrence_of, opened_in))
                # From now on an ordinary case: later events of the batch are added by UPDATE.
                record.new_values = None
                record.events_added = 0
                record.devices.clear()
            connection.execute(insert(_TRANSITIONS), transitions)
        joined = [r for r in self.records.values() if r.new_values is None and r.events_added]
        if joined:
            known = _devices_already_reporting(session, joined)
            additions = [
                _additions(r, len(r.devices - known.get(r.key, set())), now)
                for r in sorted(joined, key=lambda r: r.key)
            ]
            session.connection().execute(_ADD_TO_CASE, additions)
            for record in joined:
                record.events_added = 0
                record.devices.clear()

    def _add(self, record: CaseRecord) -> None:
        self.records[record.key] = record
        if record.cell is not None:
            self._by_cell.setdefault((record.violation_type, record.cell), set()).add(record.key)
        if record.device_id is not None and record.track_id is not None:
            key = (record.violation_type, record.device_id, record.track_id)
            self._by_track.setdefault(key, set()).add(record.key)


def _shared(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """The share of the smaller box that the two boxes have in common."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return width * height / smaller if smaller > 0 else 0.0


def chunks(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    """``items`` in slices small enough for one ``IN (...)`` on every backend."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _later(column: Any, param: str) -> Any:
    value = bindparam(param, type_=UtcDateTime())
    return case((column < value, value), else_=column)


def _earlier(column: Any, param: str) -> Any:
    value = bindparam(param, type_=UtcDateTime())
    return case((column > value, value), else_=column)


# Relative changes only: another worker (same-track joins reach outside the cells this batch
# locked) or a dispatcher may have written the row since it was loaded.
_C = _CASES.c
_ADD_TO_CASE = (
    update(_CASES)
    .where(_C.id == bindparam("b_id"))
    .values(
        event_count=_C.event_count + bindparam("b_events"),
        device_count=_C.device_count + bindparam("b_devices"),
        last_event_at=_later(_C.last_event_at, "b_last"),
        first_event_at=_earlier(_C.first_event_at, "b_first"),
        max_score=case((_C.max_score < bindparam("b_score"), bindparam("b_score")), else_=_C.max_score),
        candidate=and_(_C.candidate, bindparam("b_candidate")),
        updated_at=bindparam("b_now", type_=UtcDateTime()),
    )
)


def _devices_already_reporting(session: Session, records: list[CaseRecord]) -> dict[int, set[str]]:
    """For each joined case, which of this batch's devices had reported it before."""
    case_ids = sorted(r.key for r in records)
    devices = sorted({device for r in records for device in r.devices})
    known: dict[int, set[str]] = {}
    for start in range(0, len(case_ids), 500):
        # case_id IN (...) AND device_id IN (...): a search of the (case_id, device_id) index; a
        # row-value IN would scan it whole on SQLite.
        rows = session.execute(
            select(_EVENTS.c.case_id, _EVENTS.c.device_id)
            .where(_EVENTS.c.case_id.in_(case_ids[start : start + 500]), _EVENTS.c.device_id.in_(devices))
            .distinct()
        )
        for case_id, device_id in rows:
            known.setdefault(int(case_id), set()).add(str(device_id))
    return known


def _additions(record: CaseRecord, new_devices: int, now: datetime) -> dict[str, Any]:
    return {
        "b_id": record.id,
        "b_events": record.events_added,
        "b_devices": new_devices,
        "b_last": record.last_event_at,
        "b_first": record.first_event_at,
        "b_score": record.max_score,
        "b_candidate": record.candidate,
        "b_now": now,
    }


def _survivor(session: Session, case_id: int) -> int:
    """The case a merge chain ends in: a target may itself have been merged into another since."""
    seen = {case_id}
    while (onward := session.scalar(select(Case.merged_into).where(Case.id == case_id))) is not None:
        if onward in seen:  # a cycle cannot be made through the API; stop rather than spin
            break
        seen.add(onward)
        case_id = onward
    return case_id

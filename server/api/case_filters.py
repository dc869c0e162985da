"""The case filters the queue, its counts and bulk actions share, as one typed value and SQL.

``GET /cases`` and ``GET /cases/counts`` read them from the query string (:func:`case_filter_query`);
``POST /cases/bulk-actions`` takes the same fields as JSON. One definition, so "reject everything the
queue shows" acts on exactly what the queue showed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Query
from sqlalchemy import ColumnElement, and_, not_

from server.api.deps import as_utc
from server.api.query import bbox_clause, parse_bbox
from server.cases.workflow import OPEN_STATES
from server.db.models import Case, CaseState
from streetwatch.events import ViolationType

_OPEN = sorted(s.value for s in OPEN_STATES)


@dataclass(frozen=True)
class CaseFilter:
    state: tuple[CaseState, ...] = ()
    violation_type: ViolationType | None = None
    priority: int | None = None
    candidate: bool | None = None
    device_id: str | None = None
    assigned_team: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    bbox: str | None = None
    overdue: bool | None = None

    def conditions(self, now: datetime) -> list[ColumnElement[bool]]:
        """SQL conditions (AND) for these filters; ``now`` decides what is overdue."""
        conditions: list[ColumnElement[bool]] = []
        if self.state:
            conditions.append(Case.state.in_([s.value for s in self.state]))
        if self.violation_type is not None:
            conditions.append(Case.violation_type == self.violation_type.value)
        if self.priority is not None:
            conditions.append(Case.priority == self.priority)
        if self.candidate is not None:
            conditions.append(Case.candidate.is_(self.candidate))
        if self.device_id is not None:
            conditions.append(Case.device_id == self.device_id)
        if self.assigned_team is not None:
            conditions.append(Case.assigned_team == self.assigned_team)
        start, end = as_utc(self.since), as_utc(self.until)
        if start is not None:
            conditions.append(Case.last_event_at >= start)
        if end is not None:
            conditions.append(Case.first_event_at < end)
        box = parse_bbox(self.bbox)
        if box is not None:
            conditions.append(bbox_clause(box, Case.lat, Case.lon))
        if self.overdue is not None:
            late = overdue_clause(now)
            conditions.append(late if self.overdue else not_(late))
        return conditions


def overdue_clause(now: datetime) -> ColumnElement[bool]:
    """Open and past the SLA due time (a case without an SLA is never overdue)."""
    return and_(Case.sla_due_at.is_not(None), Case.sla_due_at < now, Case.state.in_(_OPEN))


def is_overdue(case: Case, now: datetime) -> bool:
    return case.sla_due_at is not None and case.sla_due_at < now and case.state in _OPEN


def case_filter_query(
    state: Annotated[
        list[CaseState] | None, Query(description="Only these states (repeat the parameter for several).")
    ] = None,
    violation_type: Annotated[ViolationType | None, Query(description="Only this violation type.")] = None,
    priority: Annotated[int | None, Query(ge=1, le=5, description="Only this priority (1..5).")] = None,
    candidate: Annotated[
        bool | None, Query(description="true: only candidates (generic-class detections); false: none.")
    ] = None,
    device_id: Annotated[
        str | None, Query(max_length=64, description="Only cases opened by this box.")
    ] = None,
    assigned_team: Annotated[
        str | None, Query(max_length=64, description="Only cases dispatched to it.")
    ] = None,
    since: Annotated[
        datetime | None, Query(description="Seen at or after this time: last_event_at >= since.")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="Seen before this time: first_event_at < until.")
    ] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (WGS 84).")] = None,
    overdue: Annotated[
        bool | None, Query(description="true: open and past the SLA due time; false: not overdue.")
    ] = None,
) -> CaseFilter:
    return CaseFilter(
        state=tuple(state or ()),
        violation_type=violation_type,
        priority=priority,
        candidate=candidate,
        device_id=device_id,
        assigned_team=assigned_team,
        since=since,
        until=until,
        bbox=bbox,
        overdue=overdue,
    )

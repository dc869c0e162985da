"""``/cases``: merged violations, with filters, sort and pages; detail with events and evidence."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from server.api.cursor import after_case_cursor, encode_case_cursor
from server.api.deps import SessionDep, ViewerDep, as_utc
from server.api.links import EvidenceLinks
from server.api.query import DEFAULT_LIMIT, MAX_LIMIT, QueryError, bbox_clause, parse_bbox, parse_sort
from server.api.schemas.cases import CaseDetail, CasePublic, TransitionPublic
from server.api.schemas.common import Page
from server.api.schemas.events import event_public
from server.db.models import Case, CaseState, CaseTransition, Event
from streetwatch.events import ViolationType

router = APIRouter(prefix="/cases", tags=["cases"])

SORTABLE = ("last_event_at", "opened_at", "priority", "event_count", "sla_due_at", "id")
_SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "last_event_at": Case.last_event_at,
    "opened_at": Case.opened_at,
    "priority": Case.priority,
    "event_count": Case.event_count,
    "sla_due_at": Case.sla_due_at,
    "id": Case.id,
}
#: Events shown inline in a case's detail; the rest are one /events?case_id= call away.
DETAIL_EVENTS = 200


@router.get("", response_model=Page[CasePublic], summary="List cases")
def list_cases(
    session: SessionDep,
    _caller: ViewerDep,
    state: Annotated[
        list[CaseState] | None, Query(description="Only these states (repeat the parameter for several).")
    ] = None,
    violation_type: Annotated[ViolationType | None, Query(description="Only this violation type.")] = None,
    priority: Annotated[int | None, Query(ge=1, le=5, description="Only this priority (1..5).")] = None,
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
    sort: Annotated[str, Query(description=f"One of {', '.join(SORTABLE)}; prefix '-' for descending.")] = (
        "-last_event_at"
    ),
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page: stable paging while cases arrive (no offset)."),
    ] = None,
) -> Page[CasePublic]:
    conditions: list[ColumnElement[bool]] = []
    if state:
        conditions.append(Case.state.in_([s.value for s in state]))
    if violation_type is not None:
        conditions.append(Case.violation_type == violation_type.value)
    if priority is not None:
        conditions.append(Case.priority == priority)
    if device_id is not None:
        conditions.append(Case.device_id == device_id)
    if assigned_team is not None:
        conditions.append(Case.assigned_team == assigned_team)
    start, end = as_utc(since), as_utc(until)
    if start is not None:
        conditions.append(Case.last_event_at >= start)
    if end is not None:
        conditions.append(Case.first_event_at < end)
    box = parse_bbox(bbox)
    if box is not None:
        conditions.append(bbox_clause(box, Case.lat, Case.lon))
    key = parse_sort(sort, SORTABLE, "-last_event_at")
    column = _SORT_COLUMNS[key.field]
    # Nulls (no SLA) last either way; the id breaks ties so pages never overlap.
    primary = column.desc().nulls_last() if key.descending else column.asc().nulls_last()
    order = [primary, Case.id.desc() if key.descending else Case.id.asc()]

    total = session.scalar(select(func.count()).select_from(Case).where(*conditions)) or 0
    if cursor:
        if offset:
            raise QueryError("cursor", "cannot be combined with offset; use one or the other")
        conditions.append(after_case_cursor(cursor, key, column))
    rows = session.scalars(select(Case).where(*conditions).order_by(*order).limit(limit).offset(offset)).all()
    return Page[CasePublic](
        items=[CasePublic.model_validate(c) for c in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_cursor=encode_case_cursor(key, rows[-1]) if len(rows) == limit else None,
    )


@router.get("/{case_id}", response_model=CaseDetail, summary="One case with its events, evidence and history")
def get_case(request: Request, session: SessionDep, _caller: ViewerDep, case_id: int) -> CaseDetail:
    return case_detail(session, load_case(session, case_id), EvidenceLinks(request))


def load_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case with id {case_id}")
    return case


def case_detail(session: Session, case: Case, links: EvidenceLinks) -> CaseDetail:
    """The detail view: newest events (shown oldest first), best evidence first, full history."""
    total = session.scalar(select(func.count()).select_from(Event).where(Event.case_id == case.id)) or 0
    newest = session.scalars(
        select(Event).where(Event.case_id == case.id).order_by(Event.observed_at.desc()).limit(DETAIL_EVENTS)
    ).all()
    events = list(reversed(newest))
    by_score = sorted((e for e in events if e.frame_sha256), key=lambda e: e.score, reverse=True)
    evidence_urls = list(dict.fromkeys(links.url(e.frame_sha256) for e in by_score if e.frame_sha256))
    transitions = session.scalars(
        select(CaseTransition).where(CaseTransition.case_id == case.id).order_by(CaseTransition.id)
    ).all()
    return CaseDetail(
        **CasePublic.model_validate(case).model_dump(),
        events=[event_public(e, links) for e in events],
        events_total=total,
        evidence_urls=evidence_urls,
        transitions=[TransitionPublic.model_validate(t) for t in transitions],
    )

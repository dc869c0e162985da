"""``/events``: every stored observation, filterable by type, time, place and device."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import InstrumentedAttribute

from server.api.cursor import after_cursor, encode_cursor
from server.api.deps import SessionDep, ViewerDep, as_utc
from server.api.links import EvidenceLinks
from server.api.paging import CountQuery, PageRows, paginate
from server.api.query import (
    DEFAULT_LIMIT,
    DEVICE_HELP,
    MAX_LIMIT,
    bbox_clause,
    device_clause,
    parse_bbox,
    parse_sort,
)
from server.api.schemas.common import Page
from server.api.schemas.events import EventPublic, event_public
from server.db.models import Event
from streetwatch.events import ViolationType

router = APIRouter(prefix="/events", tags=["events"])

SORTABLE = ("observed_at", "received_at", "score")
_SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "observed_at": Event.observed_at,
    "received_at": Event.received_at,
    "score": Event.score,
}

BBOX_HELP = (
    "minlon,minlat,maxlon,maxlat (WGS 84), against each event's place (the object's when the box placed "
    "it, else the camera's fix); events without a position never match."
)


@router.get("", response_model=Page[EventPublic], summary="List events")
def list_events(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    violation_type: Annotated[ViolationType | None, Query(description="Only this violation type.")] = None,
    device_id: Annotated[str | None, Query(max_length=65, description=DEVICE_HELP)] = None,
    case_id: Annotated[int | None, Query(description="Only events merged into this case.")] = None,
    since: Annotated[datetime | None, Query(description="observed_at >= since (UTC if no zone).")] = None,
    until: Annotated[datetime | None, Query(description="observed_at < until (UTC if no zone).")] = None,
    bbox: Annotated[str | None, Query(description=BBOX_HELP)] = None,
    sort: Annotated[str, Query(description=f"One of {', '.join(SORTABLE)}; prefix '-' for descending.")] = (
        "-observed_at"
    ),
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
    cursor: Annotated[
        str | None, Query(description="next_cursor of the previous page: deep paging without offset.")
    ] = None,
    count: CountQuery = None,
) -> Page[EventPublic]:
    conditions: list[ColumnElement[bool]] = []
    if violation_type is not None:
        conditions.append(Event.violation_type == violation_type.value)
    if device_id is not None:
        conditions.append(device_clause(device_id, Event.device_id))
    if case_id is not None:
        conditions.append(Event.case_id == case_id)
    start, end = as_utc(since), as_utc(until)
    if start is not None:
        conditions.append(Event.observed_at >= start)
    if end is not None:
        conditions.append(Event.observed_at < end)
    box = parse_bbox(bbox)
    if box is not None:
        conditions.append(bbox_clause(box, Event.lat, Event.lon))
    key = parse_sort(sort, SORTABLE, "-observed_at")
    column = _SORT_COLUMNS[key.field]
    order = [column.desc(), Event.event_id.desc()] if key.descending else [column.asc(), Event.event_id.asc()]
    page: PageRows[Event] = paginate(
        session,
        select(Event).where(*conditions),
        order=order,
        cursor=cursor,
        after=lambda c: after_cursor(c, key, column),
        limit=limit,
        offset=offset,
        count=count,
    )
    links = EvidenceLinks(request)
    return Page[EventPublic](
        items=[event_public(e, links) for e in page.rows],
        total=page.total,
        limit=limit,
        offset=offset,
        next_cursor=encode_cursor(key, page.last) if page.last is not None else None,
    )


@router.get("/{event_id}", response_model=EventPublic, summary="One event")
def get_event(request: Request, session: SessionDep, _caller: ViewerDep, event_id: uuid.UUID) -> EventPublic:
    event = session.get(Event, event_id)
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no event with id {event_id}")
    return event_public(event, EvidenceLinks(request))

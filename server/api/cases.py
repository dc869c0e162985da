"""``/cases``: merged violations, with filters, sort and pages; counts; detail with events, evidence,
history and review data; a case's evidence package (``server.api.case_package``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute

from server.api.case_filters import CaseFilter, overdue_clause
from server.api.case_package import PACKAGE_EVENTS, build_package, chunks
from server.api.case_views import case_detail, case_rows, load_case, sign_reach
from server.api.cursor import (
    URGENT,
    after_case_cursor,
    after_urgent_cursor,
    due_key,
    encode_case_cursor,
    encode_urgent_cursor,
)
from server.api.deps import SessionDep, ViewerDep, utcnow
from server.api.links import EvidenceLinks
from server.api.paging import CountQuery, PageRows, paginate
from server.api.query import DEFAULT_LIMIT, MAX_LIMIT, QueryError, SortKey, parse_sort
from server.api.schemas.cases import CaseDetail, CasePublic
from server.api.schemas.common import Page
from server.db.models import Case

router = APIRouter(prefix="/cases", tags=["cases"])

SORTABLE = ("last_event_at", "opened_at", "priority", "event_count", "sla_due_at", "id", URGENT)
_SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "last_event_at": Case.last_event_at,
    "opened_at": Case.opened_at,
    "priority": Case.priority,
    "event_count": Case.event_count,
    "sla_due_at": Case.sla_due_at,
    "id": Case.id,
}

CaseFilterDep = Annotated[CaseFilter, Query()]


@router.get("", response_model=Page[CasePublic], summary="List cases")
def list_cases(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    filters: CaseFilterDep,
    sort: Annotated[
        str,
        Query(
            description=f"One of {', '.join(SORTABLE)}; prefix '-' for descending. urgent: priority 1 first,"
            " then the open case due soonest (sla_due_at; finished cases and those without one after),"
            " then newest last_event_at."
        ),
    ] = "-last_event_at",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
    cursor: Annotated[
        str | None,
        Query(description="next_cursor of the previous page: stable paging while cases arrive (no offset)."),
    ] = None,
    count: CountQuery = None,
) -> Page[CasePublic]:
    now = utcnow()
    filters.check_attribute(request.app.state.taxonomy)
    conditions = filters.conditions(now)
    key = parse_sort(sort, SORTABLE, "-last_event_at")
    if key.field == URGENT and key.descending:
        raise QueryError("sort", "urgent has one direction (most urgent first); use sort=urgent")
    page: PageRows[Case] = paginate(
        session,
        select(Case).where(*conditions),
        order=case_order(key),
        cursor=cursor,
        after=(
            after_urgent_cursor
            if key.field == URGENT
            else lambda c: after_case_cursor(c, key, _SORT_COLUMNS[key.field])
        ),
        limit=limit,
        offset=offset,
        count=count,
    )
    next_cursor = None
    if page.last is not None:
        last = page.last
        next_cursor = encode_urgent_cursor(last) if key.field == URGENT else encode_case_cursor(key, last)
    return Page[CasePublic](
        items=case_rows(session, page.rows, EvidenceLinks(request), now),
        total=page.total,
        limit=limit,
        offset=offset,
        next_cursor=next_cursor,
    )


def case_order(key: SortKey) -> list[Any]:
    if key.field == URGENT:
        return [Case.priority.asc(), due_key().asc(), Case.last_event_at.desc(), Case.id.desc()]
    column = _SORT_COLUMNS[key.field]
    # Nulls (no SLA) last either way; the id breaks ties so pages never overlap.
    primary = column.desc().nulls_last() if key.descending else column.asc().nulls_last()
    return [primary, Case.id.desc() if key.descending else Case.id.asc()]


class CaseCounts(BaseModel):
    total: int = Field(description="Cases matching the filters.")
    overdue: int = Field(description="Of those, open and past their SLA due time.")
    by_state: dict[str, int] = Field(description="state -> cases (non-zero only).")
    by_type: dict[str, int] = Field(description="violation type -> cases (non-zero only).")
    by_type_state: dict[str, dict[str, int]] = Field(description="violation type -> state -> cases.")


@router.get("/counts", response_model=CaseCounts, summary="Counts per type and state for the queue")
def count_cases(
    request: Request, session: SessionDep, _caller: ViewerDep, filters: CaseFilterDep
) -> CaseCounts:
    now = utcnow()
    filters.check_attribute(request.app.state.taxonomy)
    conditions = filters.conditions(now)
    rows = session.execute(
        select(Case.violation_type, Case.state, func.count())
        .where(*conditions)
        .group_by(Case.violation_type, Case.state)
    ).all()
    overdue = session.scalar(select(func.count()).select_from(Case).where(*conditions, overdue_clause(now)))
    counts = CaseCounts(total=0, overdue=overdue or 0, by_state={}, by_type={}, by_type_state={})
    for violation_type, state, count in rows:
        counts.total += count
        counts.by_state[state] = counts.by_state.get(state, 0) + count
        counts.by_type[violation_type] = counts.by_type.get(violation_type, 0) + count
        counts.by_type_state.setdefault(violation_type, {})[state] = count
    return counts


@router.get("/{case_id}", response_model=CaseDetail, summary="One case with its events, evidence and history")
def get_case(request: Request, session: SessionDep, _caller: ViewerDep, case_id: int) -> CaseDetail:
    return case_detail(
        session, load_case(session, case_id), EvidenceLinks(request), sign_reach_m=sign_reach(request)
    )


@router.get(
    "/{case_id}/package",
    response_class=StreamingResponse,
    summary="The case's evidence package: a ZIP with its images, manifest, summary and checksums",
    responses={
        200: {"content": {"application/zip": {}}, "description": "The package (server.api.case_package)."}
    },
)
def get_package(request: Request, session: SessionDep, caller: ViewerDep, case_id: int) -> StreamingResponse:
    detail = case_detail(
        session,
        load_case(session, case_id),
        EvidenceLinks(request),
        PACKAGE_EVENTS,
        sign_reach_m=sign_reach(request),
    )
    package = build_package(session, detail, request.app.state.evidence_store, caller.username)
    name = f"streetwatch-case-{case_id}.zip"
    return StreamingResponse(
        chunks(package),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )

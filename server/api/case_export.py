"""``GET /cases/export``: every case the queue's filters match, as one CSV for a spreadsheet.

What a bureau hands on: the month's confirmed trucks for the traffic police, a district's open
piles for the sanitation contractor. One row per case with where and when, its state, who decided
it and how, what the box and the reviewers said of the object, and a link that opens it in the
console. The same filters and sort as ``GET /cases``, but every page at once: at most
``MAX_EXPORT`` rows, more is a 422 that asks for narrower filters instead of a partial file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.api.case_views import case_rows
from server.api.cases import SORTABLE, CaseFilterDep, case_order
from server.api.cursor import URGENT
from server.api.deps import SessionDep, ViewerDep, as_utc, utcnow
from server.api.links import EvidenceLinks
from server.api.query import QueryError, parse_sort
from server.api.stats import csv_response
from server.cases.decisions import standing
from server.db.models import Case, CaseReview
from server.web.console import CONSOLE_PATH

router = APIRouter(prefix="/cases", tags=["cases"])

SortQuery = Annotated[str, Query(description=f"As GET /cases: one of {', '.join(SORTABLE)}.")]

#: More rows than this is a filter too wide for one file (and for one request's memory).
MAX_EXPORT = 50_000
#: Cases read per query: bounded memory however many rows the file gets.
_BATCH = 500


class CaseExportRow(BaseModel):
    """One case as a spreadsheet row: flat values only, times in UTC (SQLite gives them back naive)."""

    case_id: int
    violation_type: str
    state: str
    priority: int
    candidate: bool
    overdue: bool
    # Optional only for as_utc's sake: a case always has these three.
    opened_at: datetime | None
    first_event_at: datetime | None
    last_event_at: datetime | None
    sla_due_at: datetime | None
    lat: float | None
    lon: float | None
    device_id: str | None
    device_count: int
    event_count: int
    detector_class: str | None
    max_score: float
    model: str | None = Field(description="Name and version of the best event's detector.")
    box_said: str = Field(description="The box's second-stage answer: load=uncovered; load_score=0.91")
    assigned_team: str | None
    decision: str | None = Field(description="The standing decision: confirmed, rejected or none.")
    decided_by: str | None
    decided_at: datetime | None
    reject_reason: str | None
    reviewed_as: str = Field(description="What reviewers recorded: load=partly_covered")
    resolved_at: datetime | None
    closed_at: datetime | None
    merged_into: int | None
    recurrence_of: int | None
    console_url: str


COLUMNS = tuple(CaseExportRow.model_fields)


@router.get(
    "/export",
    summary="The cases the filters match, as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "One row per case, a header line first."}},
)
def export_cases(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    filters: CaseFilterDep,
    sort: SortQuery = "-last_event_at",
) -> Response:
    now = utcnow()
    filters.check_attribute(request.app.state.taxonomy)
    key = parse_sort(sort, SORTABLE, "-last_event_at")
    if key.field == URGENT and key.descending:
        raise QueryError("sort", "urgent has one direction (most urgent first); use sort=urgent")
    ids = session.scalars(
        select(Case.id).where(*filters.conditions(now)).order_by(*case_order(key)).limit(MAX_EXPORT + 1)
    ).all()
    if len(ids) > MAX_EXPORT:
        raise QueryError(
            "filters", f"match more than {MAX_EXPORT} cases; narrow them (a time range, a type, a state)"
        )
    console = str(request.base_url).rstrip("/") + CONSOLE_PATH + "/#/queue?state=all&case="
    links = EvidenceLinks(request)
    rows = [row for batch in _batches(ids) for row in _rows(session, batch, links, console, now)]
    return csv_response(rows, f"cases-{now:%Y%m%d-%H%M}", COLUMNS)  # a header even with no rows


def _batches(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _BATCH):
        yield ids[start : start + _BATCH]


def _rows(
    session: Session, ids: Sequence[int], links: EvidenceLinks, console: str, now: datetime
) -> list[CaseExportRow]:
    """The rows of the cases ``ids``, in that order."""
    loaded = session.scalars(
        select(Case).where(Case.id.in_(ids)).options(selectinload(Case.transitions))
    ).all()
    by_id = {case.id: case for case in loaded}
    cases = [by_id[i] for i in ids if i in by_id]
    reviews = {
        case_id: attributes or {}
        for case_id, attributes in session.execute(
            select(CaseReview.case_id, CaseReview.attributes).where(CaseReview.case_id.in_(ids))
        ).all()
    }
    rows = []
    for case, public in zip(cases, case_rows(session, cases, links, now), strict=True):
        stand = standing(case.transitions)
        decision = stand.decision
        box_said = public.attributes.model_dump(mode="json", exclude_none=True) if public.attributes else {}
        rows.append(
            CaseExportRow(
                case_id=case.id,
                violation_type=case.violation_type,
                state=case.state.value,
                priority=case.priority,
                candidate=public.candidate,
                overdue=public.overdue,
                opened_at=as_utc(case.opened_at),
                first_event_at=as_utc(case.first_event_at),
                last_event_at=as_utc(case.last_event_at),
                sla_due_at=as_utc(case.sla_due_at),
                lat=None if case.lat is None else round(case.lat, 6),
                lon=None if case.lon is None else round(case.lon, 6),
                device_id=case.device_id,
                device_count=case.device_count,
                event_count=case.event_count,
                detector_class=public.detector_class,
                max_score=round(case.max_score, 3),
                model=f"{public.model_name} {public.model_version}" if public.model_name else None,
                box_said=_pairs(box_said),
                assigned_team=case.assigned_team,
                decision=None if decision is None else ("confirmed" if stand.confirmed else "rejected"),
                decided_by=None if decision is None else decision.actor,
                decided_at=None if decision is None else as_utc(decision.at),
                reject_reason=stand.reason_code,
                reviewed_as=_pairs({k: v["value"] for k, v in reviews.get(case.id, {}).items() if v}),
                resolved_at=as_utc(case.resolved_at),
                closed_at=as_utc(case.closed_at),
                merged_into=case.merged_into,
                recurrence_of=case.recurrence_of,
                console_url=f"{console}{case.id}",
            )
        )
    return rows


def _pairs(values: dict[str, Any]) -> str:
    """``load=uncovered; load_score=0.91``: one cell a spreadsheet filter can still search."""
    return "; ".join(f"{k}={v}" for k, v in sorted(values.items()))

"""``/stats``: what a supervisor watches, as JSON or CSV (``?format=csv``).

=======================  ==========================================================================
route                    what
=======================  ==========================================================================
GET /stats/precision     per violation type and model version: standing decisions, the share
                         confirmed (violations) and the share real (the model's live precision: a
                         permitted sign was a sign; duplicates and bad images excluded from both)
GET /stats/throughput    reviewer actions per reviewer per hour or day
GET /stats/open-cases    open cases by type and age since opening, with how many are overdue
GET /stats/recurrences   places (geohash cells) where one violation type keeps coming back
GET /stats/signs         what the signboard register decided (``server.api.sign_stats``)
GET /stats/labels        what reviewers recorded with their decisions (``server.api.label_stats``)
=======================  ==========================================================================

This is how the city sees whether a new model is better: the share confirmed of what each model
version raised, as reviewers decide, per violation type.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, selectinload

from server.api.deps import SessionDep, ViewerDep, as_utc, utcnow
from server.api.query import QueryError
from server.api.schemas.stats import (
    OpenCasesAnswer,
    OpenCasesRow,
    PrecisionAnswer,
    PrecisionRow,
    PrecisionTotal,
    RecurrenceRow,
    RecurrencesAnswer,
    ReviewerTotal,
    ThroughputAnswer,
    ThroughputRow,
)
from server.cases.decisions import CONFIRMING_ACTIONS, standing
from server.cases.review import RejectReason
from server.cases.states import HELD_STATES
from server.cases.workflow import OPEN_STATES
from server.db.models import Case, CaseState, CaseTransition, Event
from server.matching.geohash import decode_bbox

router = APIRouter(prefix="/stats", tags=["stats"])

Format = Literal["json", "csv"]
SinceQuery = Annotated[
    datetime | None, Query(description="From this time, inclusive (ISO 8601; UTC if no zone).")
]
UntilQuery = Annotated[
    datetime | None, Query(description="Before this time, exclusive (ISO 8601; UTC if no zone); after since.")
]
FormatQuery = Annotated[Format, Query(description="json, or csv for a spreadsheet.")]

#: Rejections that say nothing about the model: left out of the share confirmed.
EXCLUDED = (RejectReason.duplicate.value, RejectReason.bad_image.value)
#: A rejection that says the object is real, only allowed: no violation, but the model was right.
PERMITTED = RejectReason.permitted.value
_OPEN = sorted(OPEN_STATES)
#: Age buckets of open cases: (label, lower bound).
AGE_BUCKETS: tuple[tuple[str, timedelta], ...] = (
    ("<1h", timedelta(0)),
    ("1-4h", timedelta(hours=1)),
    ("4-24h", timedelta(hours=4)),
    ("1-3d", timedelta(days=1)),
    ("3-7d", timedelta(days=3)),
    (">7d", timedelta(days=7)),
)


def csv_response(rows: Sequence[BaseModel], name: str, columns: Sequence[str] | None = None) -> Response:
    """``rows`` as CSV with a header line; nested values flattened by the caller."""
    dumped = [row.model_dump(mode="json") for row in rows]
    header = list(columns) if columns else (list(dumped[0]) if dumped else [])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in dumped:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return Response(
        content=out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="streetwatch-{name}.csv"'},
    )


def _bounds(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """The window ``[since, until)`` in UTC; an empty or backwards one is a 422, not an empty answer."""
    start, end = as_utc(since), as_utc(until)
    if start is not None and end is not None and end <= start:
        raise QueryError(
            "until", f"must be after since, got since={start.isoformat()} until={end.isoformat()}"
        )
    return start, end


def time_window(column: Any, since: datetime | None, until: datetime | None) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    start, end = _bounds(since, until)
    if start is not None:
        conditions.append(column >= start)
    if end is not None:
        conditions.append(column < end)
    return conditions


def _share(confirmed: int, counted: int) -> float | None:
    return round(confirmed / counted, 4) if counted else None


def decided_cases(
    session: Session, since: datetime | None, until: datetime | None
) -> dict[int, tuple[Case, bool, str | None]]:
    """Cases whose standing decision (confirmed or rejected) was made in the window: case id ->
    (case, confirmed, reject reason). Also read by the fleet's precision halt (server.fleet.precision)."""
    # The window is on when the standing decision was made (its transition's ``at``), not on
    # when the case opened: a model's precision since it went out, or over the last week.
    start, end = _bounds(since, until)
    decided_in_window = exists().where(
        CaseTransition.case_id == Case.id,
        or_(
            CaseTransition.to_state.in_((CaseState.confirmed, CaseState.rejected)),
            CaseTransition.action.in_(CONFIRMING_ACTIONS),  # a dispatch or resolve may stand for a confirm
        ),
        *time_window(CaseTransition.at, since, until),
    )
    cases = session.scalars(
        select(Case)
        .where(decided_in_window, Case.merged_into.is_(None))
        .options(selectinload(Case.transitions))
    ).all()
    decided: dict[int, tuple[Case, bool, str | None]] = {}
    for item in cases:
        stand = standing(item.transitions)
        if stand.decision is None:
            continue
        at = stand.decision.at
        if (start is not None and at < start) or (end is not None and at >= end):
            continue  # decided in the window, but decided again since
        confirmed = stand.confirmed
        decided[item.id] = (item, confirmed, stand.reason_code)
    return decided


@router.get(
    "/precision", response_model=PrecisionAnswer, summary="Share confirmed per type and model version"
)
def precision(
    session: SessionDep,
    _caller: ViewerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    format: FormatQuery = "json",
) -> PrecisionAnswer | Response:
    start, end = _bounds(since, until)
    decided = decided_cases(session, since, until)
    models = _opening_models(session, list(decided))
    groups: dict[_PrecisionKey, Counter[str]] = defaultdict(Counter)
    for case_id, (item, confirmed, reason) in decided.items():
        name, version, config = models.get(case_id, ("unknown", "unknown", ""))
        counts = groups[(item.violation_type, name, version, config)]
        counts["reviewed"] += 1
        counts["confirmed" if confirmed else "rejected"] += 1
        if not confirmed:
            counts[f"reject_{reason or 'unspecified'}"] += 1
            if reason in EXCLUDED:
                counts["excluded"] += 1
            if reason == PERMITTED:
                counts["permitted"] += 1
    rows = [_precision_row(key, counts) for key, counts in sorted(groups.items())]
    totals: dict[str, Counter[str]] = defaultdict(Counter)
    for (violation_type, *_model), counts in groups.items():
        totals[violation_type].update(counts)
    answer = PrecisionAnswer(
        since=start,
        until=end,
        rows=rows,
        totals=[
            PrecisionTotal(
                violation_type=t,
                reviewed=c["reviewed"],
                confirmed=c["confirmed"],
                rejected=c["rejected"],
                excluded=c["excluded"],
                permitted=c["permitted"],
                share_confirmed=_share(c["confirmed"], c["reviewed"] - c["excluded"]),
                share_real=_share(c["confirmed"] + c["permitted"], c["reviewed"] - c["excluded"]),
            )
            for t, c in sorted(totals.items())
        ],
    )
    if format == "csv":
        reasons = [f"reject_{r.value}" for r in RejectReason] + ["reject_unspecified"]
        flat = [_FlatPrecision(**row.model_dump(exclude={"reject_reasons"}), **_reasons(row)) for row in rows]
        columns = [*PrecisionRow.model_fields.keys() - {"reject_reasons"}]
        ordered = [c for c in PrecisionRow.model_fields if c in columns] + reasons
        return csv_response(flat, "precision", ordered)
    return answer


class _FlatPrecision(BaseModel):
    model_config = {"extra": "allow"}


def _reasons(row: PrecisionRow) -> dict[str, int]:
    return {f"reject_{k}": v for k, v in row.reject_reasons.items()}


#: (violation type, model name, model version, "config version" or "" for a box's own file).
_PrecisionKey = tuple[str, str, str, str]


def _cell_bbox(cell: str) -> str:
    """A geohash cell as the queue's ``bbox`` filter spells an area (minlon,minlat,maxlon,maxlat)."""
    south, west, north, east = decode_bbox(cell)
    return f"{west:.6f},{south:.6f},{east:.6f},{north:.6f}"


def _precision_row(key: _PrecisionKey, counts: Counter[str]) -> PrecisionRow:
    violation_type, name, version, config = key
    return PrecisionRow(
        violation_type=violation_type,
        model_name=name,
        model_version=version,
        config=config or None,
        reviewed=counts["reviewed"],
        confirmed=counts["confirmed"],
        rejected=counts["rejected"],
        excluded=counts["excluded"],
        permitted=counts["permitted"],
        share_confirmed=_share(counts["confirmed"], counts["reviewed"] - counts["excluded"]),
        share_real=_share(counts["confirmed"] + counts["permitted"], counts["reviewed"] - counts["excluded"]),
        reject_reasons={
            k.removeprefix("reject_"): v for k, v in sorted(counts.items()) if k.startswith("reject_")
        },
    )


def _opening_models(session: Session, case_ids: list[int]) -> dict[int, tuple[str, str, str]]:
    """The model (name, version) of each case's earliest event, the one that raised it, and the
    configuration the box ran then ("name version"; "" for the box's own file)."""
    columns = (Event.model_name, Event.model_version, Event.config_name, Event.config_version)
    return {
        case_id: (name, version, f"{config} {config_version}" if config and config_version else "")
        for case_id, (name, version, config, config_version) in opening_values(
            session, case_ids, *columns
        ).items()
    }


def opening_values(
    session: Session, case_ids: list[int], *columns: InstrumentedAttribute[Any]
) -> dict[int, tuple[Any, ...]]:
    """``columns`` of each case's earliest event (the one that raised it), by case id. Also read by
    the fleet's precision halt for the load classifier that answered it (server.fleet.precision)."""
    found: dict[int, tuple[Any, ...]] = {}
    for chunk in range(0, len(case_ids), 500):
        ids = case_ids[chunk : chunk + 500]
        rank = (
            func.row_number()
            .over(partition_by=Event.case_id, order_by=(Event.observed_at.asc(), Event.received_at.asc()))
            .label("rank")
        )
        sub = select(Event.case_id, *columns, rank).where(Event.case_id.in_(ids)).subquery()
        picked = [sub.c[column.key] for column in columns]
        for case_id, *values in session.execute(select(sub.c.case_id, *picked).where(sub.c.rank == 1)):
            found[case_id] = tuple(values)
    return found


@router.get("/throughput", response_model=ThroughputAnswer, summary="Reviewer actions per hour or day")
def throughput(
    session: SessionDep,
    _caller: ViewerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    bucket: Annotated[Literal["hour", "day"], Query(description="hour or day (UTC).")] = "hour",
    format: FormatQuery = "json",
) -> ThroughputAnswer | Response:
    steps = session.execute(
        select(CaseTransition.actor, CaseTransition.action, CaseTransition.at).where(
            CaseTransition.action.is_not(None),
            ~CaseTransition.actor.startswith("system:"),
            *time_window(CaseTransition.at, since, until),
        )
    ).all()
    groups: dict[tuple[str, datetime], Counter[str]] = defaultdict(Counter)
    for actor, action, at in steps:
        start = at.replace(minute=0, second=0, microsecond=0)
        if bucket == "day":
            start = start.replace(hour=0)
        counts = groups[(actor, start)]
        counts["actions"] += 1
        counts[action if action in ("confirm", "reject") else "other"] += 1
    rows = [
        ThroughputRow(
            reviewer=actor,
            bucket_start=start,
            actions=c["actions"],
            confirm=c["confirm"],
            reject=c["reject"],
            other=c["other"],
        )
        for (actor, start), c in sorted(groups.items())
    ]
    per_reviewer: dict[str, list[int]] = defaultdict(list)
    for row in rows:
        per_reviewer[row.reviewer].append(row.actions)
    answer = ThroughputAnswer(
        bucket=bucket,
        rows=rows,
        reviewers=[
            ReviewerTotal(
                reviewer=name,
                actions=sum(counts),
                active_buckets=len(counts),
                per_bucket=round(sum(counts) / len(counts), 2),
            )
            for name, counts in sorted(per_reviewer.items())
        ],
    )
    return csv_response(rows, "throughput") if format == "csv" else answer


@router.get("/open-cases", response_model=OpenCasesAnswer, summary="Open cases by type and age, with SLA")
def open_cases(
    session: SessionDep, _caller: ViewerDep, format: FormatQuery = "json"
) -> OpenCasesAnswer | Response:
    now = utcnow()
    # Newest bucket first in the CASE: a case falls in the first bucket whose lower bound it passed.
    whens = [
        (Case.opened_at > now - lower_next, label)
        for (label, _lower), (_label_next, lower_next) in pairwise(AGE_BUCKETS)
    ]
    age = case(*whens, else_=AGE_BUCKETS[-1][0]).label("age")
    late = func.sum(case((and_(Case.sla_due_at.is_not(None), Case.sla_due_at < now), 1), else_=0))
    found = session.execute(
        select(Case.violation_type, age, func.count(), late)
        .where(Case.state.in_(_OPEN))
        .group_by(Case.violation_type, age)
    ).all()
    order = {label: i for i, (label, _) in enumerate(AGE_BUCKETS)}
    rows = sorted(
        (OpenCasesRow(violation_type=t, age=a, open=n, overdue=int(o or 0)) for t, a, n, o in found),
        key=lambda r: (r.violation_type, order[r.age]),
    )
    answer = OpenCasesAnswer(
        buckets=[label for label, _ in AGE_BUCKETS],
        rows=rows,
        total_open=sum(r.open for r in rows),
        total_overdue=sum(r.overdue for r in rows),
    )
    return csv_response(rows, "open-cases") if format == "csv" else answer


@router.get(
    "/recurrences", response_model=RecurrencesAnswer, summary="Places where violations keep coming back"
)
def recurrences(
    session: SessionDep,
    _caller: ViewerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    min_cases: Annotated[
        int, Query(ge=1, le=1000, description="Only places with this many cases or more.")
    ] = 2,
    min_recurrences: Annotated[
        int,
        Query(
            ge=0,
            le=1000,
            description="Only places with this many recurrences or more (1: places that came back, "
            "not a shop front whose signs are several cases at once).",
        ),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most places listed.")] = 100,
    format: FormatQuery = "json",
) -> RecurrencesAnswer | Response:
    window = [
        Case.cell.is_not(None),
        Case.merged_into.is_(None),
        Case.state.not_in(sorted(HELD_STATES)),  # sightings awaiting a second pass are no cases yet
        *time_window(Case.opened_at, since, until),
    ]
    count = func.count().label("cases")
    recurred = func.sum(case((Case.recurrence_of.is_not(None), 1), else_=0)).label("recurred")
    found = session.execute(
        select(
            Case.violation_type,
            Case.cell,
            count,
            recurred,
            func.sum(case((Case.state.in_(_OPEN), 1), else_=0)),
            func.avg(Case.lat),
            func.avg(Case.lon),
            func.min(Case.opened_at),
            func.max(Case.last_event_at),
        )
        .where(*window)
        .group_by(Case.violation_type, Case.cell)
        .having(func.count() >= min_cases, recurred >= min_recurrences)
        # Coming back first: several objects seen at once (a shop front's signs) are many cases, not
        # a place that keeps coming back.
        .order_by(recurred.desc(), count.desc(), Case.violation_type, Case.cell)
        .limit(limit)
    ).all()
    places = [(t, c) for t, c, *_ in found]
    ids: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    if places:
        members = session.execute(
            select(Case.violation_type, Case.cell, Case.id)
            .where(*window, or_(*(and_(Case.violation_type == t, Case.cell == c) for t, c in places)))
            .order_by(Case.id.desc())
        ).all()
        for t, c, case_id in members:
            if len(ids[(t, c)]) < 20:
                ids[(t, c)].append(case_id)
    rows = [
        RecurrenceRow(
            violation_type=t,
            cell=c,
            bbox=_cell_bbox(c),
            lat=round(lat, 6) if lat is not None else None,
            lon=round(lon, 6) if lon is not None else None,
            cases=n,
            recurrences=int(r or 0),
            open=int(o or 0),
            first_opened_at=as_utc(first),
            last_event_at=as_utc(last),
            case_ids=ids[(t, c)],
        )
        for t, c, n, r, o, lat, lon, first, last in found
    ]
    if format == "csv":
        return csv_response(
            [_FlatPrecision(**{**r.model_dump(), "case_ids": " ".join(map(str, r.case_ids))}) for r in rows],
            "recurrences",
            list(RecurrenceRow.model_fields),
        )
    return RecurrencesAnswer(rows=rows)

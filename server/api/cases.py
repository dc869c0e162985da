"""``/cases``: merged violations, with filters, sort and pages; counts; detail with events, evidence,
history and review data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from server.api.case_filters import CaseFilter, case_filter_query, is_overdue, overdue_clause
from server.api.cursor import (
    URGENT,
    after_case_cursor,
    after_urgent_cursor,
    encode_case_cursor,
    encode_urgent_cursor,
)
from server.api.deps import SessionDep, ViewerDep, utcnow
from server.api.links import EvidenceLinks
from server.api.paging import CountQuery, PageRows, paginate
from server.api.query import DEFAULT_LIMIT, MAX_LIMIT, QueryError, SortKey, parse_sort
from server.api.schemas.cases import CaseDetail, CasePublic, TransitionPublic
from server.api.schemas.common import Page
from server.api.schemas.events import AttributesPublic, event_public
from server.api.schemas.reviews import AddedBoxPublic, AttributePublic, ReviewPublic
from server.cases.decisions import standing
from server.cases.workflow import ALLOWED
from server.db.models import Case, CaseReview, CaseState, CaseTransition, Event

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
#: Events shown inline in a case's detail; the rest are one /events?case_id= call away.
DETAIL_EVENTS = 200

CaseFilterDep = Annotated[CaseFilter, Depends(case_filter_query)]


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
    conditions = filters.conditions(now)
    key = parse_sort(sort, SORTABLE, "-last_event_at")
    if key.field == URGENT and key.descending:
        raise QueryError("sort", "urgent has one direction (most urgent first); use sort=urgent")
    page: PageRows[Case] = paginate(
        session,
        select(Case).where(*conditions),
        order=_order(key),
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


def _order(key: SortKey) -> list[Any]:
    if key.field == URGENT:
        return [Case.priority.asc(), Case.last_event_at.desc(), Case.id.desc()]
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
def count_cases(session: SessionDep, _caller: ViewerDep, filters: CaseFilterDep) -> CaseCounts:
    now = utcnow()
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
    return case_detail(session, load_case(session, case_id), EvidenceLinks(request))


def load_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no case with id {case_id}")
    return case


def best_evidence(session: Session, case_ids: Sequence[int]) -> dict[int, Event]:
    """Each case's best-scoring event that kept evidence, in one query for a whole page."""
    if not case_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=Event.case_id, order_by=(Event.score.desc(), Event.observed_at.asc()))
        .label("rank")
    )
    ranked = (
        select(Event.event_id, rank)
        .where(Event.case_id.in_(list(case_ids)), Event.frame_sha256.is_not(None))
        .subquery()
    )
    events = session.scalars(
        select(Event).join(ranked, ranked.c.event_id == Event.event_id).where(ranked.c.rank == 1)
    ).all()
    return {e.case_id: e for e in events if e.case_id is not None}


def case_rows(
    session: Session, cases: Sequence[Case], links: EvidenceLinks, now: datetime
) -> list[CasePublic]:
    best = best_evidence(session, [c.id for c in cases])
    return [case_public(case, best.get(case.id), links, now) for case in cases]


def case_public(case: Case, best: Event | None, links: EvidenceLinks, now: datetime) -> CasePublic:
    extra: dict[str, Any] = {"overdue": is_overdue(case, now)}
    if best is not None:
        crop = best.crop_sha256 or best.frame_sha256
        extra |= {
            "detector_class": best.detector_class,
            "model_name": best.model_name,
            "model_version": best.model_version,
            "crop_url": links.maybe(best.crop_sha256),
            "attributes": AttributesPublic.model_validate(best.attributes) if best.attributes else None,
            "thumbnail_url": links.url(crop) + "/thumbnail" if crop else None,
        }
    return CasePublic.model_validate(case).model_copy(update=extra)


def allowed_actions(state: CaseState) -> list[str]:
    """The actions ``POST /cases/{id}/actions`` accepts for a case in ``state``."""
    moves = ALLOWED[state]
    actions = [
        action
        for action, target in (
            ("confirm", CaseState.confirmed),
            ("reject", CaseState.rejected),
            ("dispatch", CaseState.dispatched),
            ("resolve", CaseState.resolved),
            ("close", CaseState.closed),
        )
        if target in moves
    ]
    if state in (CaseState.rejected, CaseState.resolved, CaseState.possibly_resolved):
        actions.append("reopen")
    if state is not CaseState.closed:
        actions += ["relabel", "annotate", "merge"]
    return [*actions, "note"]


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
    merged_from = session.scalars(select(Case.id).where(Case.merged_into == case.id).order_by(Case.id)).all()
    now = utcnow()
    best = by_score[0] if by_score else None
    return CaseDetail(
        **case_public(case, best, links, now).model_dump(),
        events=[event_public(e, links) for e in events],
        events_total=total,
        evidence_urls=evidence_urls,
        transitions=[TransitionPublic.model_validate(t) for t in transitions],
        allowed_actions=allowed_actions(CaseState(case.state)),
        merged_from=list(merged_from),
        review=review_public(session, case, transitions, links),
    )


def review_public(
    session: Session, case: Case, transitions: Sequence[CaseTransition], links: EvidenceLinks
) -> ReviewPublic | None:
    """The case's review, or None when nobody drew, labelled or rejected with a reason yet."""
    review = session.get(CaseReview, case.id)
    stand = standing(transitions)
    if review is None and stand.label is None and stand.reason_code is None:
        return None
    event = session.get(Event, review.event_id) if review is not None and review.event_id else None
    return ReviewPublic(
        event_id=event.event_id if event else None,
        frame_width=event.frame_width if event else None,
        frame_height=event.frame_height if event else None,
        clean_url=links.maybe(event.clean_sha256) if event else None,
        frame_url=links.maybe(event.frame_sha256) if event else None,
        detector_box=[float(v) for v in event.box] if event else None,
        box=review.box if review else None,
        added_boxes=[AddedBoxPublic(**b) for b in (review.added_boxes if review else [])],
        attributes={k: AttributePublic(**v) for k, v in (review.attributes if review else {}).items()},
        label=stand.label,
        reject_reason=stand.reason_code,
        updated_by=review.updated_by if review else None,
        updated_at=review.updated_at if review else None,
    )

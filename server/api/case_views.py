"""What the case endpoints show: a case loaded or 404, list rows with their best evidence, the
detail view. The routers (``/cases``, the review actions, the console's live stream) share these
instead of importing one another."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import HTTPException, Request, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.api.case_filters import is_overdue
from server.api.deps import utcnow
from server.api.links import EvidenceLinks
from server.api.schemas.cases import (
    CaseDetail,
    CasePublic,
    RegisterContext,
    RegisteredSince,
    TransitionPublic,
)
from server.api.schemas.events import AttributesPublic, event_public
from server.api.schemas.reviews import AddedBoxPublic, AttributePublic, ReviewPublic
from server.cases.decisions import standing
from server.cases.workflow import ALLOWED
from server.db.models import Case, CaseReview, CaseState, CaseTransition, Event, Sign, SignSighting
from server.signs.outcome import SignOutcome
from server.signs.since import entries_since, reach_of
from streetwatch.events import ViolationType

#: Events shown inline in a case's detail; the rest are one /events?case_id= call away.
DETAIL_EVENTS = 200


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


def case_detail(
    session: Session,
    case: Case,
    links: EvidenceLinks,
    events_limit: int = DETAIL_EVENTS,
    *,
    sign_reach_m: float = 0.0,
) -> CaseDetail:
    """The detail view: the newest ``events_limit`` events (shown oldest first), best evidence
    first, full history. ``sign_reach_m`` (:func:`sign_reach`): how far from a signboard case a
    register entry made after it may be its sign; 0 looks for none."""
    total = session.scalar(select(func.count()).select_from(Event).where(Event.case_id == case.id)) or 0
    newest = session.scalars(
        select(Event).where(Event.case_id == case.id).order_by(Event.observed_at.desc()).limit(events_limit)
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
        allowed_actions=allowed_actions(case.state),
        merged_from=list(merged_from),
        review=review_public(session, case, transitions, links),
        sign_register=register_context(session, case, links, sign_reach_m),
    )


def sign_reach(request: Request) -> float:
    """The server's reach for register entries around a case (:func:`server.signs.since.reach_of`)."""
    signs = request.app.state.settings.signs
    return reach_of(signs.max_distance_m, signs.max_accuracy_m)


def register_context(
    session: Session, case: Case, links: EvidenceLinks, reach_m: float = 0.0
) -> RegisterContext | None:
    """The register's first decision that put a sighting in this case, the entry it names, and
    the entries made at the case's place since it opened (within ``reach_m``)."""
    if case.violation_type != ViolationType.illegal_signboard.value:
        return None  # only signboards meet the register: no query for every other case shown
    since = [
        RegisteredSince(
            sign_id=sign.id,
            permit_id=sign.permit_id,
            valid_until=sign.valid_until,
            source=sign.source,
            created_at=sign.created_at,
            distance_m=round(distance, 1),
            sign_crop_url=links.maybe(sign.crop_sha256),
        )
        for distance, sign in (entries_since(session, case, reach_m) if reach_m > 0 else [])
    ]
    opened = session.scalars(
        select(SignSighting)
        .where(SignSighting.case_id == case.id, SignSighting.outcome != SignOutcome.pending)
        .order_by(SignSighting.id)
        .limit(1)
    ).first()
    registered_as = session.scalars(select(Sign.id).where(Sign.case_id == case.id).limit(1)).first()
    if opened is None and registered_as is None and not since:
        return None  # not a signboard case, or one from before the register (or with it off)
    entry = session.get(Sign, opened.sign_id) if opened is not None and opened.sign_id is not None else None
    return RegisterContext(
        outcome=str(opened.outcome) if opened is not None else "unknown",  # registered, never decided
        sign_id=entry.id if entry is not None else None,
        permit_id=entry.permit_id if entry is not None else None,
        valid_until=entry.valid_until if entry is not None else None,
        sign_crop_url=links.maybe(entry.crop_sha256) if entry is not None else None,
        distance_m=opened.distance_m if opened is not None else None,
        similarity=opened.similarity if opened is not None else None,
        zone_name=opened.zone_name if opened is not None else None,
        registered_as=registered_as,
        registered_since=since,
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
        detector_box=event.box_on_evidence if event else None,
        box=review.box if review else None,
        added_boxes=[AddedBoxPublic(**b) for b in (review.added_boxes if review else [])],
        attributes={k: AttributePublic(**v) for k, v in (review.attributes if review else {}).items()},
        label=stand.label,
        reject_reason=stand.reason_code,
        updated_by=review.updated_by if review else None,
        updated_at=review.updated_at if review else None,
    )

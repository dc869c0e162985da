"""``GET /labels``: reviewed cases as training labels (``streetwatch dataset from-reviews`` reads it).

A dispatcher's confirm or reject is a label: a confirmed case says "this box shows a
<detector class>" (or the class the reviewer named instead), a rejected one says "this box
is not what the detector said" (or is the class the reviewer named). Each item carries the
case's best *clean* frames, the frames without anything drawn on them, because drawn boxes
must never reach a training set.

Paging is by case id (``?after=``), so a trainer can fetch everything once and later only
what was reviewed since (``?since=``). A decision taken back by a reopen is listed as
``withdrawn`` until someone decides again, so an incremental export learns to drop it (so is a
decided case later merged into another: its frames went with its events).

Review data rides along: the reject reason and what it means for training (``outcome``), the
attributes with the class each is exported as, and on the reviewed frame (listed first) the
corrected box and the boxes of objects the detector missed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session, selectinload

from server.api.deps import SessionDep, ViewerDep, as_utc
from server.api.links import EvidenceLinks
from server.api.schemas.labels import LabelAttribute, LabelFrame, LabelPage, ReviewedCase
from server.api.schemas.reviews import AddedBoxPublic
from server.cases.decisions import CONFIRMING_ACTIONS, confirms_by_acting, is_decision, standing
from server.cases.review import RejectReason
from server.db.models import Case, CaseReview, CaseState, CaseTransition, Event, Evidence
from streetwatch.taxonomy import Taxonomy

router = APIRouter(prefix="/labels", tags=["labels"])

_DECISIONS = (CaseState.confirmed, CaseState.rejected)
_OUTCOMES = {
    None: "rejected",
    RejectReason.not_a_violation.value: "hard_negative",
    RejectReason.permitted.value: "permitted",
    RejectReason.wrong_class.value: "wrong_class",
    RejectReason.duplicate.value: "duplicate",
    RejectReason.bad_image.value: "bad_image",
}


def standing_review(transitions: Sequence[CaseTransition]) -> tuple[CaseTransition, str | None] | None:
    """The confirm or reject that stands, with its label; None when nothing stands
    (:func:`server.cases.decisions.standing` has the rules)."""
    stand = standing(transitions)
    return None if stand.decision is None else (stand.decision, stand.label)


@router.get(
    "",
    response_model=LabelPage,
    summary="Reviewed cases with their clean frames, as training labels (viewer)",
)
def list_labels(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    after: Annotated[int, Query(ge=0, description="Only cases with a larger id (paging).")] = 0,
    since: Annotated[
        datetime | None, Query(description="Only cases changed at or after this time (updated_at).")
    ] = None,
    frames: Annotated[int, Query(ge=1, le=20, description="Clean frames per case, best score first.")] = 3,
    limit: Annotated[int, Query(ge=1, le=500, description="Cases per page.")] = 100,
) -> LabelPage:
    reviewed = exists().where(
        CaseTransition.case_id == Case.id,
        or_(CaseTransition.to_state.in_(_DECISIONS), CaseTransition.action.in_(CONFIRMING_ACTIONS)),
    )
    query = select(Case).where(Case.id > after, reviewed)
    if since is not None:
        query = query.where(Case.updated_at >= as_utc(since))
    query = query.options(selectinload(Case.transitions)).order_by(Case.id).limit(limit + 1)
    cases = list(session.scalars(query))
    more = len(cases) > limit
    cases = cases[:limit]
    standings = {case.id: standing(case.transitions) for case in cases}
    # Frames only for cases whose decision stands: a withdrawn one lists none.
    with_frames = [
        case.id for case in cases if standings[case.id].decision is not None and case.merged_into is None
    ]
    reviews = {
        r.case_id: r for r in session.scalars(select(CaseReview).where(CaseReview.case_id.in_(with_frames)))
    }
    best = _best_frames(session, with_frames, reviews, frames, EvidenceLinks(request))
    taxonomy: Taxonomy = request.app.state.taxonomy
    items: list[ReviewedCase] = []
    for case in cases:
        stand = standings[case.id]
        decision = stand.decision
        if decision is None or case.merged_into is not None:
            if not any(is_decision(step) or confirms_by_acting(step) for step in case.transitions):
                continue  # moved to a decided state by something that was no decision
            # Reopened (or merged away) and not decided again: say so, so an earlier export drops it.
            last = case.transitions[-1]
            items.append(
                ReviewedCase(
                    case_id=case.id,
                    violation_type=case.violation_type,
                    decision="withdrawn",
                    label=None,
                    reviewer=last.actor,
                    reviewed_at=last.at,
                    reason=last.reason,
                    outcome="withdrawn",
                    frames=[],
                )
            )
            continue
        confirmed = stand.confirmed
        review = reviews.get(case.id)
        items.append(
            ReviewedCase(
                case_id=case.id,
                violation_type=case.violation_type,
                decision="confirmed" if confirmed else "rejected",
                label=stand.label,
                reviewer=decision.actor,
                reviewed_at=decision.at,
                reason=decision.reason,
                reject_reason=stand.reason_code,
                outcome="confirmed" if confirmed else _OUTCOMES.get(stand.reason_code, "rejected"),
                attributes=_attributes(taxonomy, case, review),
                frames=best.get(case.id, []),
            )
        )
    return LabelPage(items=items, next_after=cases[-1].id if more else None)


def _attributes(taxonomy: Taxonomy, case: Case, review: CaseReview | None) -> list[LabelAttribute]:
    if review is None or not review.attributes:
        return []
    defined = {a.name: a for a in taxonomy.attributes_for(case.violation_type)}
    result = []
    for name, stored in sorted(review.attributes.items()):
        definition = defined.get(name)
        value = definition.get(stored["value"]) if definition else None
        if definition is None or value is None:
            continue  # the taxonomy dropped it since; nothing to export it as
        result.append(
            LabelAttribute(
                name=name,
                value=value.value,
                class_name=value.class_name,
                box_kind=definition.box.value,
                box=stored.get("box"),
                violation=value.violation,
            )
        )
    return result


def _best_frames(
    session: Session, case_ids: list[int], reviews: dict[int, CaseReview], count: int, links: EvidenceLinks
) -> dict[int, list[LabelFrame]]:
    """Each case's reviewed frame first, then its best distinct clean frames, up to ``count``."""
    # Only frames the server actually holds: a listed URL must answer.
    stored = exists().where(Evidence.sha256 == Event.clean_sha256)
    reviewed_ids = {r.event_id for r in reviews.values() if r.event_id is not None}
    events = list(
        session.scalars(
            select(Event)
            .where(Event.case_id.in_(case_ids), Event.clean_sha256.is_not(None), stored)
            .order_by(Event.case_id, Event.score.desc(), Event.observed_at)
        )
    )
    # The reviewed event leads its case's list, whatever its score.
    events.sort(key=lambda e: (e.case_id or 0, e.event_id not in reviewed_ids))
    chosen: dict[int, list[LabelFrame]] = {}
    seen: set[tuple[int, str]] = set()
    for event in events:
        sha, case_id = event.clean_sha256, event.case_id
        if sha is None or case_id is None or (case_id, sha) in seen:
            continue
        frames = chosen.setdefault(case_id, [])
        if len(frames) == count:
            continue
        seen.add((case_id, sha))
        review = reviews.get(case_id)
        extra: dict[str, Any] = {}
        if review is not None and review.event_id == event.event_id:
            extra = {
                "reviewed": True,
                "corrected_box": review.box,
                "added_boxes": [AddedBoxPublic(**b) for b in review.added_boxes],
            }
        frames.append(
            LabelFrame(
                event_id=event.event_id,
                detector_class=event.detector_class,
                score=event.score,
                box=event.box_on_evidence,
                frame_width=event.frame_width,
                frame_height=event.frame_height,
                clean_sha256=sha,
                clean_url=links.url(sha),
                model_name=event.model_name,
                model_version=event.model_version,
                observed_at=event.observed_at,
                **extra,
            )
        )
    return chosen

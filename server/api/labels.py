"""``GET /labels``: reviewed cases as training labels (``streetwatch dataset from-reviews`` reads it).

A dispatcher's confirm or reject is a label: a confirmed case says "this box shows a
<detector class>" (or the class the reviewer named instead), a rejected one says "this box
is not what the detector said" (or is the class the reviewer named). Each item carries the
case's best *clean* frames, the frames without anything drawn on them, because drawn boxes
must never reach a training set.

Paging is by case id (``?after=``), so a trainer can fetch everything once and later only
what was reviewed since (``?since=``). A decision taken back by a reopen is listed as
``withdrawn`` until someone decides again, so an incremental export learns to drop it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from server.api.deps import SessionDep, ViewerDep, as_utc
from server.api.links import EvidenceLinks
from server.api.schemas.labels import LabelFrame, LabelPage, ReviewedCase
from server.db.models import Case, CaseState, CaseTransition, Event, Evidence

router = APIRouter(prefix="/labels", tags=["labels"])

_DECISIONS = (CaseState.confirmed.value, CaseState.rejected.value)


def standing_review(transitions: Sequence[CaseTransition]) -> tuple[CaseTransition, str | None] | None:
    """The confirm or reject that stands, with its label; None when nothing stands.

    Only what happened since the case last went (back) to new counts: a reopened rejection is
    under review again. The decision is the latest human confirm or reject; the label is the
    newest one given with that decision, so a confirm without a label that follows a labelled
    one (a reopened resolution) keeps the earlier label.
    """
    decision: CaseTransition | None = None
    labels: dict[str, str] = {}  # decision state -> newest label given with it
    for step in transitions:
        if step.to_state == CaseState.new.value:
            decision, labels = None, {}
        elif _is_decision(step):
            decision = step
            if step.label is not None:
                labels[step.to_state] = step.label
    return None if decision is None else (decision, labels.get(decision.to_state))


def _is_decision(step: CaseTransition) -> bool:
    """A reviewer's confirm or reject. A reopen that lands on ``confirmed`` (a resolution that
    did not hold) decides nothing; rows from before actions were recorded go by their state."""
    if step.action is not None:
        return step.action in ("confirm", "reject")
    return step.to_state in _DECISIONS and not step.actor.startswith("system:")


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
    reviewed = exists().where(CaseTransition.case_id == Case.id, CaseTransition.to_state.in_(_DECISIONS))
    query = select(Case).where(Case.id > after, reviewed)
    if since is not None:
        query = query.where(Case.updated_at >= as_utc(since))
    query = query.options(selectinload(Case.transitions)).order_by(Case.id).limit(limit + 1)
    cases = list(session.scalars(query))
    more = len(cases) > limit
    cases = cases[:limit]
    standings = {case.id: standing_review(case.transitions) for case in cases}
    # Frames only for cases whose decision stands: a withdrawn one lists none.
    with_frames = [case_id for case_id, standing in standings.items() if standing is not None]
    best = _best_frames(session, with_frames, frames, EvidenceLinks(request))
    items: list[ReviewedCase] = []
    for case in cases:
        standing = standings[case.id]
        if standing is None:
            if not any(_is_decision(step) for step in case.transitions):
                continue  # moved to a decided state by something that was no decision
            # Reopened and not decided again: say so, so an export made earlier drops the label.
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
                    frames=[],
                )
            )
            continue
        decision, label = standing
        items.append(
            ReviewedCase(
                case_id=case.id,
                violation_type=case.violation_type,
                decision="confirmed" if decision.to_state == CaseState.confirmed.value else "rejected",
                label=label,
                reviewer=decision.actor,
                reviewed_at=decision.at,
                reason=decision.reason,
                frames=best.get(case.id, []),
            )
        )
    return LabelPage(items=items, next_after=cases[-1].id if more else None)


def _best_frames(
    session: Session, case_ids: list[int], count: int, links: EvidenceLinks
) -> dict[int, list[LabelFrame]]:
    """Each case's best ``count`` distinct clean frames, in one query for the whole page."""
    # Only frames the server actually holds: a listed URL must answer.
    stored = exists().where(Evidence.sha256 == Event.clean_sha256)
    events = session.scalars(
        select(Event)
        .where(Event.case_id.in_(case_ids), Event.clean_sha256.is_not(None), stored)
        .order_by(Event.case_id, Event.score.desc(), Event.observed_at)
    )
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
        frames.append(
            LabelFrame(
                event_id=event.event_id,
                detector_class=event.detector_class,
                score=event.score,
                box=[float(v) for v in event.box],
                frame_width=event.frame_width,
                frame_height=event.frame_height,
                clean_sha256=sha,
                clean_url=links.url(sha),
                model_name=event.model_name,
                model_version=event.model_version,
                observed_at=event.observed_at,
            )
        )
    return chosen

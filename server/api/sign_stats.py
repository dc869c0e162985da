"""``GET /stats/signs``: what the signboard register did for the dispatchers, as JSON or CSV.

Every signboard sighting the register decided in the window, by outcome: how many sightings, how
many signs (a box's track is one sign seen), how many cases they are in. ``attached`` is the
register's work: signs seen that opened no case. Beside it the register itself: entries in force,
those whose permit has run out, and those a later entry replaced.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import distinct, func, select

from server.api.deps import SessionDep, ViewerDep, utcnow
from server.api.stats import FormatQuery, SinceQuery, UntilQuery, csv_response, time_window
from server.db.models import Sign, SignSighting
from server.signs.outcome import SignOutcome

router = APIRouter(prefix="/stats", tags=["stats"])


class SignOutcomeRow(BaseModel):
    outcome: str = Field(
        description="attached (a registered sign: no case), new, changed, expired, unverified, restricted "
        "(cases), pending (waiting for its crop)."
    )
    sightings: int = Field(description="Events the register decided this way.")
    signs: int = Field(description="Distinct signs seen (box tracks).")
    cases: int = Field(description="Distinct cases those sightings are in.")


class SignsAnswer(BaseModel):
    rows: list[SignOutcomeRow]
    signs_without_case: int = Field(description="Signs seen that the register knew: no case opened.")
    signs_with_case: int = Field(description="Signs seen that opened or joined a case.")
    entries_in_force: int = Field(description="Register entries deciding sightings now.")
    permits_lapsed: int = Field(description="Of those, whose permit has run out (their sign opens a case).")
    entries_replaced: int = Field(description="Entries a later one replaced (a case about them permitted).")


@router.get("/signs", response_model=SignsAnswer, summary="What the signboard register decided")
def sign_outcomes(
    session: SessionDep,
    _caller: ViewerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    format: FormatQuery = "json",
) -> SignsAnswer | Response:
    found = session.execute(
        select(
            SignSighting.outcome,
            func.count(),
            func.count(distinct(SignSighting.track_id)),  # a box's random UUID: one sign seen
            func.count(distinct(SignSighting.case_id)),
        )
        .where(*time_window(SignSighting.at, since, until))
        .group_by(SignSighting.outcome)
    ).all()
    order = list(SignOutcome)
    rows = sorted(
        (SignOutcomeRow(outcome=str(o), sightings=n, signs=t, cases=c) for o, n, t, c in found),
        key=lambda r: order.index(SignOutcome(r.outcome)),
    )
    if format == "csv":
        return csv_response(rows, "signs")
    in_force = Sign.superseded_by.is_(None)
    count = select(func.count()).select_from(Sign)
    return SignsAnswer(
        rows=rows,
        signs_without_case=sum(r.signs for r in rows if r.outcome == SignOutcome.attached.value),
        signs_with_case=sum(r.signs for r in rows if SignOutcome(r.outcome).opens_case),
        entries_in_force=session.scalar(count.where(in_force)) or 0,
        permits_lapsed=session.scalar(count.where(in_force, Sign.valid_until < utcnow())) or 0,
        entries_replaced=session.scalar(count.where(Sign.superseded_by.is_not(None))) or 0,
    )

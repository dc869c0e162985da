"""``GET /stats/labels``: what reviewers recorded with their decisions, as JSON or CSV.

For every violation type with review attributes (a truck's load, a sign's mounting, a vending
setup; ``datasets/classes.yaml``), how many cases decided in the window carry each value, split by
decision, and how many were decided without one. This is what a model retrained on reviews will
learn from: the load classifier waits for open loads, and this says how many the dispatchers have
given it since (``training.truck_load.field_labels`` turns them into crops). Rejections as
duplicate or bad image label nothing and are left out, as the exports leave them out.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from server.api.deps import SessionDep, ViewerDep
from server.api.stats import EXCLUDED, FormatQuery, SinceQuery, UntilQuery, csv_response, decided_cases
from server.db.models import CaseReview
from streetwatch.taxonomy import Taxonomy

router = APIRouter(prefix="/stats", tags=["stats"])


class LabelRow(BaseModel):
    violation_type: str = Field(description="The cases' violation type.")
    attribute: str = Field(description="The review attribute, e.g. load.")
    value: str | None = Field(description="The value recorded; null: decided without one.")
    violation: bool | None = Field(
        description="What classes.yaml says the value is: a violation (true), none (false), either (null)."
    )
    confirmed: int = Field(description="Cases standing confirmed with this value.")
    rejected: int = Field(description="Cases standing rejected with it (not as duplicate or bad image).")


class LabelsAnswer(BaseModel):
    rows: list[LabelRow] = Field(description="Per type, attribute and value, in classes.yaml's order.")
    decided: int = Field(description="Cases of those types decided in the window (the rows' cases).")


@router.get("/labels", response_model=LabelsAnswer, summary="What reviewers recorded with their decisions")
def label_counts(
    request: Request,
    session: SessionDep,
    _caller: ViewerDep,
    since: SinceQuery = None,
    until: UntilQuery = None,
    format: FormatQuery = "json",
) -> LabelsAnswer | Response:
    taxonomy: Taxonomy = request.app.state.taxonomy
    decided = {
        case_id: (case.violation_type, confirmed)
        for case_id, (case, confirmed, reason) in decided_cases(session, since, until).items()
        if taxonomy.attributes_for(case.violation_type) and reason not in EXCLUDED
    }
    recorded: dict[int, dict[str, Any] | None] = dict(
        session.execute(
            select(CaseReview.case_id, CaseReview.attributes).where(CaseReview.case_id.in_(list(decided)))
        ).all()
    )
    counts: Counter[tuple[str, str, str | None, bool]] = Counter()
    for case_id, (violation_type, confirmed) in decided.items():
        values = recorded.get(case_id) or {}
        for attribute in taxonomy.attributes_for(violation_type):
            entry = values.get(attribute.name)
            counts[(violation_type, attribute.name, entry["value"] if entry else None, confirmed)] += 1
    rows = []
    for violation, attributes in taxonomy.review_attributes.items():
        for attribute in attributes:
            # Every value, counted or not (a trainer reads the zeros too), then "decided without one".
            for value, flag in [*((v.value, v.violation) for v in attribute.values), (None, None)]:
                key = (violation.value, attribute.name, value)
                rows.append(
                    LabelRow(
                        violation_type=violation.value,
                        attribute=attribute.name,
                        value=value,
                        violation=flag,
                        confirmed=counts[(*key, True)],
                        rejected=counts[(*key, False)],
                    )
                )
    if format == "csv":
        return csv_response(rows, "labels")
    return LabelsAnswer(rows=rows, decided=len(decided))

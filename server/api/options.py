"""``GET /review-options``: what the console draws its review forms from (reject reasons, classes,
attributes per violation type, actions), so the page never hard-codes the taxonomy."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.api.case_views import allowed_actions
from server.api.deps import ViewerDep
from server.api.schemas.cases import CaseAction
from server.api.schemas.reviews import (
    AttributeDefinitionPublic,
    AttributeValuePublic,
    RejectReasonPublic,
    ReviewOptions,
)
from server.cases.review import REJECT_REASON_TEXT
from server.db.models import CaseState
from streetwatch.taxonomy import Taxonomy

router = APIRouter(prefix="/review-options", tags=["reviews"])


@router.get(
    "", response_model=ReviewOptions, summary="Reject reasons, classes and attributes for review forms"
)
def review_options(request: Request, _caller: ViewerDep) -> ReviewOptions:
    taxonomy: Taxonomy = request.app.state.taxonomy
    return ReviewOptions(
        reject_reasons=[
            RejectReasonPublic(code=r.value, description=t) for r, t in REJECT_REASON_TEXT.items()
        ],
        classes=list(taxonomy.class_names()),
        attributes={
            violation.value: [
                AttributeDefinitionPublic(
                    name=a.name,
                    description=a.description,
                    box=a.box.value,
                    box_hint=a.box_hint,
                    values=[
                        AttributeValuePublic(
                            value=v.value,
                            class_name=v.class_name,
                            description=v.description,
                            violation=v.violation,
                        )
                        for v in a.values
                    ],
                )
                for a in attributes
            ]
            for violation, attributes in taxonomy.review_attributes.items()
        },
        actions=[a.value for a in CaseAction],
        # So a page acting on many cases can say beforehand which of them an action fits.
        actions_by_state={state.value: allowed_actions(state) for state in CaseState},
    )

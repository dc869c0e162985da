"""``GET /review-options``: what the console draws its review forms from (reject reasons, classes,
attributes per violation type, actions), so the page never hard-codes the taxonomy."""

from __future__ import annotations

from fastapi import APIRouter, Request

from server.api.deps import ViewerDep
from server.api.schemas.cases import CaseAction
from server.api.schemas.reviews import (
    AttributeDefinitionPublic,
    AttributeValuePublic,
    RejectReasonPublic,
    ReviewOptions,
)
from server.cases.review import REJECT_REASON_TEXT
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
                            value=v.value, class_name=v.class_name, description=v.description
                        )
                        for v in a.values
                    ],
                )
                for a in attributes
            ]
            for violation, attributes in taxonomy.review_attributes.items()
        },
        actions=[a.value for a in CaseAction],
    )

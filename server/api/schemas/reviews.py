"""Review data on the wire: boxes and attributes a reviewer sends, the review a case shows, the
options the console draws its forms from, and bulk actions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.api.query import MAX_DB_INT
from server.db.models import CaseState

#: ``[x1, y1, x2, y2]`` in pixels of the reviewed event's frame; checked against the frame on the server.
Box = Annotated[
    list[float], Field(min_length=4, max_length=4, description="[x1, y1, x2, y2] in frame pixels.")
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddedBoxIn(_Strict):
    class_name: str = Field(max_length=64, description="A detector class of the taxonomy.")
    box: Box


class AttributeIn(_Strict):
    value: str = Field(max_length=64, description="One of the values GET /review-options lists.")
    box: Box | None = Field(default=None, description="The part the value's class boxes (box: part only).")


class ReviewIn(_Strict):
    """Parts present replace what was there; parts left out are kept."""

    event_id: uuid.UUID | None = Field(
        default=None,
        description="The event whose clean frame is reviewed (default: the one reviewed before,"
        " else the best-scoring one with a clean frame).",
    )
    box: Box | None = Field(
        default=None, description="Corrected box of the reviewed object; null: the detector's."
    )
    added_boxes: list[AddedBoxIn] | None = Field(
        default=None, description="Objects the detector missed in the same frame; [] removes them all."
    )
    attributes: dict[Annotated[str, StringConstraints(max_length=64)], AttributeIn | None] | None = Field(
        default=None, description="name -> value (and box); null as a value removes the attribute."
    )


class AddedBoxPublic(BaseModel):
    class_name: str = Field(description="Detector class.")
    box: list[float] = Field(description="[x1, y1, x2, y2] in frame pixels.")


class AttributePublic(BaseModel):
    value: str = Field(description="The attribute's value.")
    box: list[float] | None = Field(description="The part's box, when drawn.")


class ReviewPublic(BaseModel):
    event_id: uuid.UUID | None = Field(description="The reviewed event (null if it was deleted).")
    frame_width: int | None = Field(description="Width of that event's frame: boxes are in its pixels.")
    frame_height: int | None = Field(description="Height of that event's frame.")
    clean_url: str | None = Field(description="The clean frame to draw on.")
    frame_url: str | None = Field(description="The annotated frame.")
    detector_box: list[float] | None = Field(description="The detector's box on that frame.")
    box: list[float] | None = Field(description="The corrected box; null: the detector's box stands.")
    added_boxes: list[AddedBoxPublic] = Field(description="Objects the detector missed.")
    attributes: dict[str, AttributePublic] = Field(description="Attributes by name.")
    label: str | None = Field(
        description="The class the object is labelled as now, when a reviewer named one."
    )
    reject_reason: str | None = Field(description="The standing rejection's reason code.")
    updated_by: str | None = Field(description="Who drew last.")
    updated_at: datetime | None = Field(description="When.")


class RejectReasonPublic(BaseModel):
    code: str
    description: str


class AttributeValuePublic(BaseModel):
    value: str
    class_name: str | None = Field(description="The detector class it is exported as; null: none.")
    description: str
    violation: bool | None = Field(
        default=None, description="true: a case with it is a violation; false: it is not; null: either."
    )


class AttributeDefinitionPublic(BaseModel):
    name: str
    description: str
    box: Literal["object", "part"] = Field(description="What the value's class boxes.")
    box_hint: str
    values: list[AttributeValuePublic]


class ReviewOptions(BaseModel):
    reject_reasons: list[RejectReasonPublic] = Field(description="The fixed set, in display order.")
    classes: list[str] = Field(description="Detector classes a label or an added box may name, model order.")
    attributes: dict[str, list[AttributeDefinitionPublic]] = Field(description="Per violation type.")
    actions: list[str] = Field(description="Every action POST /cases/{id}/actions takes.")
    actions_by_state: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per case state, the actions a case in it accepts (a case's own allowed_actions).",
    )


class CaseFilterIn(_Strict):
    """The GET /cases filters as JSON (for bulk actions)."""

    state: list[CaseState] | None = None
    violation_type: str | None = None
    priority: int | None = Field(default=None, ge=1, le=5)
    candidate: bool | None = None
    device_id: str | None = Field(default=None, max_length=65, description="As in GET /cases (a trailing *).")
    assigned_team: str | None = Field(default=None, max_length=64)
    since: datetime | None = None
    until: datetime | None = None
    bbox: str | None = None
    overdue: bool | None = None
    attribute: str | None = Field(default=None, max_length=129, description="name:value, as in GET /cases.")


class BulkActionCreate(_Strict):
    action: str = Field(description="confirm, reject, dispatch, resolve, close, reopen, relabel or note.")
    filter: CaseFilterIn | None = Field(default=None, description="Select by the GET /cases filters.")
    case_ids: list[Annotated[int, Field(ge=1, le=MAX_DB_INT)]] | None = Field(
        default=None, max_length=1000, description="Or select these cases."
    )
    expected_state: CaseState | None = Field(
        default=None, description="Applies to every case; left out: each case's state when it was selected."
    )
    reason: str = Field(default="", max_length=2000)
    reject_reason: str | None = None
    label: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    team: str | None = Field(default=None, max_length=64)
    dry_run: bool = Field(default=False, description="List what would be acted on; change nothing.")


class BulkResult(BaseModel):
    case_id: int
    status: int = Field(description="200, or the HTTP status the single action would have answered.")
    state: str | None = Field(description="The case's state after (or, on failure, now).")
    detail: str | None = Field(description="Why it failed; null on success.")


class BulkAnswer(BaseModel):
    action: str
    matched: int
    succeeded: int
    failed: int
    dry_run: bool
    results: list[BulkResult]

"""What ``GET /labels`` returns: reviewed cases as training labels, one clean frame per item."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from server.api.schemas.reviews import AddedBoxPublic


class LabelFrame(BaseModel):
    event_id: uuid.UUID = Field(description="The event whose frame this is.")
    detector_class: str = Field(description="What the box's detector called the object.")
    score: float = Field(description="The detector's confirmed score.")
    box: list[float] = Field(
        description="[x1, y1, x2, y2]: the object in this clean frame, in pixels of the original frame "
        "(the evidence's own box; from boxes older than event schema 3, the event's box)."
    )
    frame_width: int = Field(description="Width of the original frame (the clean JPEG may be smaller).")
    frame_height: int = Field(description="Height of the original frame.")
    clean_sha256: str = Field(description="SHA-256 of the clean frame JPEG (nothing drawn on it).")
    clean_url: str = Field(description="Where to fetch the clean frame (needs a viewer token).")
    model_name: str = Field(description="Detector model that found it.")
    model_version: str = Field(description="Its version.")
    observed_at: datetime = Field(description="UTC time of the frame.")
    reviewed: bool = Field(
        default=False, description="The frame the reviewer annotated (listed first when the case has one)."
    )
    corrected_box: list[float] | None = Field(
        default=None, description="Reviewed frame: the reviewer's box for the object; null: box stands."
    )
    added_boxes: list[AddedBoxPublic] = Field(
        default_factory=list, description="Reviewed frame: objects the detector missed, with their classes."
    )


class LabelAttribute(BaseModel):
    name: str = Field(description="Attribute name (datasets/classes.yaml review_attributes).")
    value: str = Field(description="Its value.")
    class_name: str | None = Field(description="The detector class the value is exported as; null: none.")
    box_kind: str = Field(
        description="object: the class boxes the reviewed object; part: the attribute's box."
    )
    box: list[float] | None = Field(description="part: the part's box in the reviewed frame's pixels.")
    violation: bool | None = Field(
        default=None,
        description="What classes.yaml says of the value: a violation (true), none (false: the object is"
        " real, only in a state that breaks no rule, e.g. a covered load), either (null).",
    )


class ReviewedCase(BaseModel):
    case_id: int = Field(description="The case.")
    violation_type: str = Field(description="The case's violation type.")
    decision: Literal["confirmed", "rejected", "withdrawn"] = Field(
        description="The standing review decision (the latest confirm or reject since the case was last"
        " opened or reopened for review); withdrawn: a decision was taken back by a reopen and none"
        " stands now, so a label exported earlier should be dropped (no frames are listed)."
    )
    label: str | None = Field(
        description="The detector class the reviewer named for the object; null: confirmed keeps the"
        " detector's class, rejected means the box is none of it."
    )
    reviewer: str = Field(description="Who decided.")
    reviewed_at: datetime = Field(description="When.")
    reason: str = Field(description="The reviewer's words.")
    reject_reason: str | None = Field(
        default=None,
        description="rejected: not_a_violation / wrong_class / duplicate / bad_image / permitted.",
    )
    outcome: Literal[
        "confirmed",
        "hard_negative",
        "permitted",
        "wrong_class",
        "duplicate",
        "bad_image",
        "rejected",
        "withdrawn",
    ] = Field(
        default="confirmed",
        description="What the decision means for training: hard_negative = rejected as not_a_violation;"
        " rejected = rejected without a reason code.",
    )
    attributes: list[LabelAttribute] = Field(default_factory=list, description="The reviewer's attributes.")
    frames: list[LabelFrame] = Field(
        description="The case's best clean frames (by score, one per distinct frame); empty when the"
        " boxes kept none."
    )


class LabelPage(BaseModel):
    items: list[ReviewedCase] = Field(description="Reviewed cases in case-id order.")
    next_after: int | None = Field(description="Pass as ?after= for the next page; null on the last page.")

"""Cases (merged violations), their history, and the review actions on them."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from server.api.query import MAX_DB_INT
from server.api.schemas.events import AttributesPublic, EventPublic
from server.api.schemas.reviews import ReviewIn, ReviewPublic
from server.cases.review import RejectReason
from server.db.models import CaseState


class CaseBase(BaseModel):
    violation_type: str = Field(description="street_vending / garbage_overflow / illegal_signboard / ...")
    state: str = Field(
        description="new, confirmed, rejected, dispatched, possibly_resolved, resolved, closed; "
        "awaiting_recurrence / expired: a patrol's street-vending sighting waiting for a second pass, or "
        "that waited in vain (listed only when a state filter names them)."
    )
    priority: int = Field(description="1 most urgent .. 5 least.")


class CasePublic(CaseBase):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Case number.")
    title: str = Field(description="One line for lists.")
    lat: float | None = Field(description="Centre of the case's events (WGS 84).")
    lon: float | None = Field(description="Centre of the case's events (WGS 84).")
    device_id: str | None = Field(description="The box whose event opened the case.")
    track_id: uuid.UUID | None = Field(description="Track of the opening event (moving violations).")
    opened_at: datetime = Field(description="When the case was opened.")
    first_event_at: datetime = Field(description="Earliest observation.")
    last_event_at: datetime = Field(description="Latest observation.")
    sla_due_at: datetime | None = Field(description="When it is due under the type's SLA.")
    event_count: int = Field(description="Events merged into the case.")
    device_count: int = Field(description="Distinct boxes that reported it.")
    max_score: float = Field(description="Best detector score among its events.")
    candidate: bool = Field(description="True while every event is a generic-class candidate.")
    assigned_team: str | None = Field(description="Team or grid it was dispatched to.")
    recurrence_of: int | None = Field(description="Earlier case at this spot this one recurs.")
    merged_into: int | None = Field(default=None, description="The case this duplicate was merged into.")
    possibly_resolved_at: datetime | None = Field(description="When a passing patrol no longer saw it.")
    resolved_at: datetime | None = Field(description="When it was resolved.")
    closed_at: datetime | None = Field(description="When it was closed.")
    updated_at: datetime = Field(description="Last change of any kind.")
    overdue: bool = Field(default=False, description="Open and past its SLA due time.")
    detector_class: str | None = Field(
        default=None, description="Class of the best-scoring event with evidence (null: none kept any)."
    )
    model_name: str | None = Field(default=None, description="Detector model of that event.")
    model_version: str | None = Field(default=None, description="Its version.")
    crop_url: str | None = Field(default=None, description="That event's evidence crop.")
    attributes: AttributesPublic | None = Field(
        default=None, description="That event's second-stage answer, e.g. the truck's load (null: none)."
    )
    thumbnail_url: str | None = Field(default=None, description="A small JPEG of the crop, for lists.")


class TransitionPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_state: str | None = Field(description="State before; null when the case was created.")
    to_state: str = Field(description="State after.")
    actor: str = Field(description="Username, or system:<component> for automatic steps.")
    reason: str = Field(description="Why, as given.")
    team: str | None = Field(description="Team named by a dispatch.")
    label: str | None = Field(
        default=None, description="Confirm / reject: the detector class the reviewer named for the object."
    )
    action: str | None = Field(
        default=None,
        description="The reviewer's action (confirm, reopen, note, annotate, relabel, merge, ...); null for"
        " system steps. Actions that change no state have from_state == to_state.",
    )
    reason_code: str | None = Field(
        default=None, description="reject: the reason from the fixed set; merge: duplicate."
    )
    details: dict[str, Any] | None = Field(
        default=None, description="What the action changed: boxes, attributes, the other case of a merge."
    )
    at: datetime = Field(description="When.")


class RegisteredSince(BaseModel):
    """A register entry made at a signboard case's place after the case opened (a permit imported
    or a sign registered since): the case may show that sign, which the register could not know."""

    sign_id: int
    permit_id: str | None
    valid_until: datetime | None
    source: str = Field(description="review, import or api: how the entry came.")
    created_at: datetime
    distance_m: float = Field(description="From the case's place.")
    sign_crop_url: str | None = Field(description="The entry's photo of the sign, if it has one.")


class RegisterContext(BaseModel):
    """What the sign register said of a signboard case (``server.signs``): why it opened, and the
    register entry it was compared with, so a dispatcher sees the permitted sign beside the new one."""

    outcome: str = Field(
        description="What opened the case: new (none registered here), changed (looks different from "
        "the entry), expired (its permit ran out), unverified (near the entry, appearance not checked), "
        "restricted (in a no-sign zone); unknown: a case registered as permitted that no register decision "
        "opened (from before the register, or with it off)."
    )
    sign_id: int | None = Field(
        description="The register entry it was compared with (null: none, or removed)."
    )
    permit_id: str | None = Field(description="That entry's permit.")
    valid_until: datetime | None = Field(description="When that entry's permit runs out.")
    sign_crop_url: str | None = Field(description="That entry's photo of the sign.")
    distance_m: float | None = Field(description="How far the sighting was from the entry.")
    similarity: float | None = Field(
        description="How alike the two looked (0..1; signs.min_similarity counts)."
    )
    zone_name: str | None = Field(description="restricted: the no-sign zone.")
    registered_as: int | None = Field(
        description="The register entry made from this case (rejected as permitted); null: none."
    )
    registered_since: list[RegisteredSince] = Field(
        default_factory=list,
        description="Entries in force made at the case's place after it opened, nearest first: if "
        "the case shows one of those signs, reject it as permitted.",
    )


class CaseDetail(CasePublic):
    events: list[EventPublic] = Field(description="The case's events, oldest first (at most the newest 200).")
    events_total: int = Field(description="All events of the case (events may hold fewer).")
    evidence_urls: list[str] = Field(description="Distinct full-frame evidence images, best score first.")
    transitions: list[TransitionPublic] = Field(description="Workflow history, oldest first.")
    allowed_actions: list[str] = Field(default_factory=list, description="What a reviewer may do now.")
    merged_from: list[int] = Field(default_factory=list, description="Cases merged into this one.")
    review: ReviewPublic | None = Field(
        default=None, description="The reviewed frame and what reviewers drew on it; null until annotated."
    )
    sign_register: RegisterContext | None = Field(
        default=None,
        description="Signboard cases the sign register decided on: why, and against which entry.",
    )


class CaseAction(str, Enum):
    """What a reviewer can do to a case, and the state each leads to."""

    confirm = "confirm"
    reject = "reject"
    dispatch = "dispatch"
    resolve = "resolve"
    close = "close"
    reopen = "reopen"
    relabel = "relabel"  # change the class; no state change
    annotate = "annotate"  # boxes and attributes; no state change
    note = "note"  # a note in the history; no state change
    merge = "merge"  # this case is a duplicate of into_case_id


class CaseActionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: CaseAction = Field(
        description="confirm / reject / dispatch / resolve / close / reopen / relabel / annotate / note"
        " / merge."
    )
    reason: str = Field(
        default="", max_length=2000, description="Why; kept in the case history. note: the note (required)."
    )
    team: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = (
        Field(default=None, description="dispatch: the team or grid it goes to (required; blank is no team).")
    )
    expected_state: CaseState | None = Field(
        default=None,
        description="The state the reviewer saw. When given and the case has moved on since (another"
        " reviewer acted first), the action is refused with 409 instead of overriding that decision.",
    )
    label: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description=(
            "confirm / reject: what the object really is, as a detector class of datasets/classes.yaml"
            " (e.g. confirm an umbrella candidate as vending_stall, or reject a truck as bus). Left"
            " out: confirm keeps the detector's class, reject says the box is none of it."
            " Reviewed cases become training labels (GET /labels). relabel: required."
        ),
    )
    reject_reason: RejectReason | None = Field(
        default=None,
        description="reject: not_a_violation / wrong_class / duplicate / bad_image / permitted"
        " (GET /review-options describes them).",
    )
    review: ReviewIn | None = Field(
        default=None, description="confirm / reject / annotate (required): boxes and attributes."
    )
    into_case_id: int | None = Field(
        default=None, ge=1, le=MAX_DB_INT, description="merge: the case this one merges into."
    )

"""Review data: what a reviewer says about a case beyond its state.

* a reject reason from a fixed set (:class:`RejectReason`), kept on the transition;
* the reviewed frame (one event of the case with a clean frame) and what is drawn on it: the
  corrected box of the reviewed object, boxes of objects the detector missed, and attributes the
  violation type defines in ``datasets/classes.yaml`` (``review_attributes``), kept in
  ``case_reviews`` with each change in the transition's ``details``.

Boxes are ``[x1, y1, x2, y2]`` in pixels of the reviewed event's frame and must lie inside it:
a box the frame cannot hold would become a label that points at nothing.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.workflow import CaseError
from server.db.models import Case, CaseReview, CaseTransition, Event
from streetwatch.taxonomy import AttributeBox, ReviewAttribute


class RejectReason(str, Enum):
    """Why a reviewer rejects a case; each means something different to training."""

    not_a_violation = "not_a_violation"
    wrong_class = "wrong_class"
    duplicate = "duplicate"
    bad_image = "bad_image"
    permitted = "permitted"


REJECT_REASON_TEXT: dict[RejectReason, str] = {
    RejectReason.not_a_violation: "Nothing wrong here: the object is no violation (a hard negative for"
    " training, unless a value recorded says the object is real, e.g. a truck's covered load; draw"
    " missed objects as added boxes).",
    RejectReason.wrong_class: "The box shows something else; name the class as label when you know it.",
    RejectReason.duplicate: "Another case already covers it (merge is better when you know which).",
    RejectReason.bad_image: "Cannot tell: blur, glare, night or occlusion.",
    RejectReason.permitted: "A violation-looking object with a permit (e.g. a registered signboard).",
}

#: Actions that change no state: recorded as a step from the case's state to itself.
ANNOTATION_ACTIONS = frozenset({"relabel", "annotate", "note"})
#: At most this many added boxes per case: more is a drawing gone wrong, not a street.
MAX_ADDED_BOXES = 50
#: A part's box (a truck's cargo bed) must lie at least this much inside the object's box: more
#: outside is the part of another object, e.g. the car beside the truck.
MIN_PART_INSIDE = 0.5


class ReviewError(CaseError):
    """Review data the case cannot take (a box outside the frame, an unknown class, ...)."""


def is_annotation(step: CaseTransition) -> bool:
    """True for history rows that record review data or a note, not a move of the case."""
    if step.action in ANNOTATION_ACTIONS:
        return True
    return step.action == "merge" and step.from_state == step.to_state  # the receiving side


@dataclass(frozen=True)
class AttributeChange:
    value: str
    box: list[float] | None = None


@dataclass
class ReviewChange:
    """What one request changes; ``None`` parts are left as they are."""

    event_id: uuid.UUID | None = None
    box_given: bool = False
    box: list[float] | None = None
    added_boxes: list[tuple[str, list[float]]] | None = None
    #: name -> new value, or None to remove the attribute
    attributes: dict[str, AttributeChange | None] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return (
            self.event_id is None and not self.box_given and self.added_boxes is None and not self.attributes
        )


def check_box(raw: Sequence[float], width: int, height: int, what: str) -> list[float]:
    """``raw`` as a box inside a ``width`` x ``height`` frame, or :class:`ReviewError` saying why not."""
    if len(raw) != 4 or not all(isinstance(v, int | float) and math.isfinite(v) for v in raw):
        raise ReviewError(f"{what}: expected 4 finite numbers [x1, y1, x2, y2], got {list(raw)}")
    x1, y1, x2, y2 = (float(v) for v in raw)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise ReviewError(f"{what} {list(raw)}: needs x1 < x2 and y1 < y2, at least 1 px each way")
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        raise ReviewError(f"{what} {list(raw)} is not inside the {width}x{height} frame")
    return [x1, y1, x2, y2]


def reviewed_event(
    session: Session, case: Case, wanted: uuid.UUID | None, current: CaseReview | None
) -> Event:
    """The event whose clean frame the review draws on: the one asked for, the one already
    reviewed, or the case's best-scoring event with a clean frame."""
    if wanted is not None:
        event = session.get(Event, wanted)
        if event is None or event.case_id != case.id:
            raise ReviewError(f"event {wanted} is not an event of case {case.id}")
        if event.clean_sha256 is None:
            raise ReviewError(f"event {wanted} kept no clean frame to draw on; choose another event")
        return event
    if current is not None and current.event_id is not None:
        event = session.get(Event, current.event_id)
        if event is not None and event.case_id == case.id:
            return event
    event = session.scalars(
        select(Event)
        .where(Event.case_id == case.id, Event.clean_sha256.is_not(None))
        .order_by(Event.score.desc(), Event.observed_at)
        .limit(1)
    ).first()
    if event is None:
        raise ReviewError(
            f"case {case.id} has no event with a clean frame, so there is nothing to draw on "
            "(boxes need evidence.keep_clean_frame on the box)"
        )
    return event


def apply_review(
    session: Session,
    case: Case,
    change: ReviewChange,
    *,
    classes: frozenset[str],
    attributes: Sequence[ReviewAttribute],
    actor: str,
    now: datetime,
) -> dict[str, Any]:
    """Store ``change`` on ``case``'s review; return what changed (for the transition's details)."""
    review = session.get(CaseReview, case.id)
    event = reviewed_event(session, case, change.event_id, review)
    width, height = event.frame_width, event.frame_height
    if review is None:
        review = CaseReview(case_id=case.id, event_id=event.event_id, box=None, added_boxes=[], attributes={})
        session.add(review)
    details: dict[str, Any] = {"event_id": str(event.event_id)}
    if review.event_id != event.event_id:
        # Boxes drawn on another frame mean nothing on this one.
        review.box, review.added_boxes = None, []
        review.attributes = {k: {**v, "box": None} for k, v in (review.attributes or {}).items()}
        review.event_id = event.event_id
    if change.box_given:
        review.box = None if change.box is None else check_box(change.box, width, height, "box")
        details["box"] = review.box
    if change.added_boxes is not None:
        if len(change.added_boxes) > MAX_ADDED_BOXES:
            raise ReviewError(
                f"at most {MAX_ADDED_BOXES} added boxes per case, got {len(change.added_boxes)}"
            )
        added = []
        for index, (class_name, box) in enumerate(change.added_boxes):
            what = f"added_boxes[{index}]"
            if class_name not in classes:
                raise ReviewError(
                    f"{what}: {class_name!r} is not a detector class of the taxonomy; known: "
                    + ", ".join(sorted(classes))
                )
            added.append({"class_name": class_name, "box": check_box(box, width, height, what)})
        review.added_boxes = added
        details["added_boxes"] = added
    if change.attributes:
        review.attributes = _changed_attributes(
            case,
            review.attributes or {},
            change.attributes,
            attributes,
            width,
            height,
            review.box or event.box_on_evidence,
        )
        details["attributes"] = {k: review.attributes.get(k) for k in change.attributes}
    review.updated_by = actor
    review.updated_at = now
    return details


def _changed_attributes(
    case: Case,
    current: Mapping[str, Any],
    changes: Mapping[str, AttributeChange | None],
    defined: Sequence[ReviewAttribute],
    width: int,
    height: int,
    object_box: Sequence[float] | None,
) -> dict[str, Any]:
    by_name = {a.name: a for a in defined}
    result = dict(current)
    for name, change in changes.items():
        definition = by_name.get(name)
        if definition is None:
            known = ", ".join(sorted(by_name)) or "none"
            raise ReviewError(
                f"attribute {name!r} is not defined for {case.violation_type} (defined: {known})"
            )
        if change is None:
            result.pop(name, None)
            continue
        if definition.get(change.value) is None:
            values = ", ".join(v.value for v in definition.values)
            raise ReviewError(f"attribute {name}: {change.value!r} is not one of {values}")
        box = None
        if change.box is not None:
            if definition.box is not AttributeBox.part:
                raise ReviewError(
                    f"attribute {name} labels the reviewed object itself; adjust the case's box instead"
                    " of giving the attribute one"
                )
            box = check_box(change.box, width, height, f"attributes.{name}.box")
            if object_box is not None and (inside := _share_inside(box, object_box)) < MIN_PART_INSIDE:
                # Said the way the reviewer drew it (a share of their box), the pixels last for API users.
                raise ReviewError(
                    f"the {name} box ({definition.box_hint}) belongs on the object itself, but only "
                    f"{inside:.0%} of it lies inside the object's box, and at least {MIN_PART_INSIDE:.0%} "
                    "must: it looks like a part of something else. Correct the case's box first if that "
                    f"is what is wrong (attributes.{name}.box {box}, the object's box "
                    f"{[round(v, 1) for v in object_box]})"
                )
        result[name] = {"value": change.value, "box": box}
    return result


def check_fits_decision(
    session: Session, case: Case, violation: bool, defined: Sequence[ReviewAttribute], decision: str
) -> None:
    """Refuse a decision its case's recorded attributes contradict.

    ``violation`` is what ``decision`` (e.g. "confirming says it is one") holds of the case: True
    for confirm, dispatch or a change to a case decided as a violation, False for a rejection as
    not a violation. A value ``classes.yaml`` marks the other way (a confirmed truck with a covered
    load) would make the case say one thing and its label another, so the reviewer is told the ways
    out instead. Values marked neither way never refuse.
    """
    review = session.get(CaseReview, case.id)
    recorded = (review.attributes or {}) if review is not None else {}
    for definition in defined:
        entry = recorded.get(definition.name)
        value = definition.get(entry["value"]) if entry else None
        if value is None or value.violation is None or value.violation is violation:
            continue
        name = definition.name
        fitting = " or ".join(v.value for v in definition.values if v.violation is violation)
        other_way = (
            "reject it as not_a_violation" if violation else "confirm it, or reject it for another reason"
        )
        raise ReviewError(
            f"case {case.id}'s {name} is recorded as {value.value}, which is "
            f"{'no' if violation else 'a'} violation, but {decision}: {other_way} instead, or record "
            f"the {name} it has ({fitting})"
        )


def _share_inside(inner: Sequence[float], outer: Sequence[float]) -> float:
    """The share of ``inner``'s area inside ``outer`` (boxes as [x1, y1, x2, y2])."""
    w = min(inner[2], outer[2]) - max(inner[0], outer[0])
    h = min(inner[3], outer[3]) - max(inner[1], outer[1])
    area = (inner[2] - inner[0]) * (inner[3] - inner[1])
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 0.0

"""Which teacher boxes may join a source's own labels: a pure filter, tested on boxes.

Checking the YOLOX-nano "truck" pseudo-labels in the garbage photos by eye showed vans,
cars and even green bins scored as trucks at 0.5 (models/streetwatch-det/MODEL_CARD.md).
Two rules remove most of those without a second teacher:

* a per-class score floor above the general one (truck: the class the product reports on,
  where a wrong pseudo-label costs most);
* a teacher box that lies mostly inside a box the source itself labelled (a bin, a pile
  of garbage, a signboard) is that object seen wrongly, not a vehicle: the source's label
  wins. Overlap is measured over the teacher box's own area, so a real truck carrying a
  labelled pile of garbage keeps its box.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar


class Box(Protocol):
    @property
    def x1(self) -> float: ...
    @property
    def y1(self) -> float: ...
    @property
    def x2(self) -> float: ...
    @property
    def y2(self) -> float: ...


class ScoredBox(Box, Protocol):
    @property
    def class_name(self) -> str: ...
    @property
    def score(self) -> float: ...


T = TypeVar("T", bound=ScoredBox)

#: Teacher score needed per class, where the general threshold lets too much through.
CLASS_MIN_SCORE: dict[str, float] = {"truck": 0.7}

#: A teacher box with at least this share of its area inside a source-labelled box is dropped.
MAX_SHARE_INSIDE_SOURCE_BOX = 0.5


def share_inside(inner: Box, outer: Box) -> float:
    """The fraction of ``inner``'s area that lies inside ``outer`` (0 to 1).

    >>> from training.datasets.records import LabeledBox as B
    >>> share_inside(B("truck", 0, 0, 10, 10), B("garbage_bin", 5, 0, 20, 10))
    0.5
    """
    w = min(inner.x2, outer.x2) - max(inner.x1, outer.x1)
    h = min(inner.y2, outer.y2) - max(inner.y1, outer.y1)
    area = (inner.x2 - inner.x1) * (inner.y2 - inner.y1)
    return max(0.0, w) * max(0.0, h) / area if area > 0 else 0.0


def clean_pseudo_boxes(
    teacher: Sequence[T],
    source_boxes: Sequence[Box],
    *,
    class_min_score: Mapping[str, float] = CLASS_MIN_SCORE,
    max_share_inside: float = MAX_SHARE_INSIDE_SOURCE_BOX,
) -> tuple[list[T], Counter[str]]:
    """The teacher boxes to keep, and how many were dropped for which reason."""
    kept: list[T] = []
    dropped: Counter[str] = Counter()
    for box in teacher:
        if box.score < class_min_score.get(box.class_name, 0.0):
            dropped["below_class_min_score"] += 1
        elif any(share_inside(box, own) >= max_share_inside for own in source_boxes):
            dropped["inside_a_source_box"] += 1
        else:
            kept.append(box)
    return kept, dropped

"""The team's label completion (``datasets/label_completion``) applied to a source photo's boxes.

The sources label only part of what is in their photos; a photo the team completed gains the
boxes it added (``added``), loses the source boxes it found wrong (``not_a_<class>``), and keeps
its ``ignore`` boxes out of training: YOLO labels have no ignore regions, so such an object stays
unlabelled, as it was before the completion.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence

from bench.label_completion import CompletionBox, named_by
from edge.geometry import iou
from training.datasets.records import LabeledBox, LabeledImage

#: A teacher box this close to a completed box of its class is the same object, labelled twice.
DUPLICATE_IOU = 0.5


def _box(b: LabeledBox) -> tuple[float, float, float, float]:
    return (b.x1, b.y1, b.x2, b.y2)


def complete_image(image: LabeledImage, rows: Sequence[CompletionBox], counts: Counter[str]) -> LabeledImage:
    """``image`` with its completion; ``counts`` gains ``added <class>`` and ``dropped <class>``."""
    boxes = list(image.boxes)
    for wrong in (r for r in rows if r.kind.startswith("not_a_")):
        same = [b for b in boxes if b.class_name == wrong.class_name]
        index = named_by(wrong, [_box(b) for b in same])
        if index is not None:
            boxes.remove(same[index])
            counts[f"dropped {wrong.class_name}"] += 1
    for row in (r for r in rows if r.kind == "added"):
        x1, y1 = max(0.0, row.box[0]), max(0.0, row.box[1])
        x2, y2 = min(float(image.width), row.box[2]), min(float(image.height), row.box[3])
        if x2 > x1 and y2 > y1:  # boxes read off a grid can overhang the photo by a few pixels
            boxes.append(LabeledBox(row.class_name, x1, y1, x2, y2))
            counts[f"added {row.class_name}"] += 1
    return dataclasses.replace(image, boxes=tuple(boxes))


def without_duplicates(teacher: Sequence[LabeledBox], rows: Sequence[CompletionBox]) -> list[LabeledBox]:
    """Teacher boxes that no completed box of their class (added or ignore) already covers."""
    done = [r for r in rows if not r.kind.startswith("not_a_")]
    return [
        b
        for b in teacher
        if not any(r.class_name == b.class_name and iou(_box(b), r.box) >= DUPLICATE_IOU for r in done)
    ]

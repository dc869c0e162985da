"""The common in-memory form of a labelled dataset, whatever format it came from.

Every importer produces an :class:`ImportedDataset`: a list of :class:`LabeledImage` (image path,
size, boxes in pixels with *our* class names, source name) and an :class:`ImportReport` that lists
every problem met on the way, with the file and the reason. Problems never stop an import.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from streetwatch.errors import DatasetError


@dataclass(frozen=True)
class LabeledBox:
    """One object: our class name and its box in pixels (x1, y1) top-left, (x2, y2) bottom-right."""

    class_name: str
    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not (self.x2 > self.x1 and self.y2 > self.y1):
            raise DatasetError(
                f"box for {self.class_name!r} has no area: ({self.x1}, {self.y1}, {self.x2}, {self.y2})"
            )

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1


@dataclass(frozen=True)
class LabeledImage:
    """One image with its boxes. ``origin_split`` is the split the source put it in, if any."""

    path: Path
    width: int
    height: int
    boxes: tuple[LabeledBox, ...]
    source: str
    origin_split: str | None = None

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise DatasetError(f"image {self.path} has an invalid size {self.width}x{self.height}")


class ProblemKind(str, Enum):
    """Why something in a source was not imported as it stood."""

    missing_image = "missing_image"  # a label or annotation names an image that is not there
    unreadable_image = "unreadable_image"  # truncated, corrupt or not an image at all
    size_mismatch = "size_mismatch"  # annotation says one size, the decoded image has another
    unknown_class = "unknown_class"  # a class name the mapping does not know
    class_id_out_of_range = "class_id_out_of_range"  # a numeric class id with no name
    malformed_label = "malformed_label"  # a line or element that cannot be parsed
    unreadable_annotations = "unreadable_annotations"  # a whole annotation file cannot be parsed
    box_clipped = "box_clipped"  # partly outside the image: clipped to it
    box_dropped = "box_dropped"  # outside the image or without area: dropped


@dataclass(frozen=True)
class ImportProblem:
    kind: ProblemKind
    file: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.kind.value}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did: counts, and every problem with its file and reason."""

    source: str
    images_imported: int = 0
    boxes_imported: int = 0
    polygons_converted: int = 0
    ignored_boxes: Counter[str] = field(default_factory=Counter)  # by source class name
    # Boxes whose class the mapping does not know, by source class name, and the images that had
    # them: such an image, kept, would teach those objects as background.
    unknown_classes: Counter[str] = field(default_factory=Counter)
    images_with_unknown: set[Path] = field(default_factory=set)
    problems: list[ImportProblem] = field(default_factory=list)

    def add(self, kind: ProblemKind, file: Path, reason: str) -> None:
        self.problems.append(ImportProblem(kind, file, reason))

    def count(self, kind: ProblemKind) -> int:
        return sum(1 for p in self.problems if p.kind is kind)

    def counts_by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind.value for p in self.problems).items()))

    def summary(self) -> str:
        lines = [
            f"source {self.source}: {self.images_imported} images, {self.boxes_imported} boxes"
            f" ({self.polygons_converted} from polygons)"
        ]
        if self.ignored_boxes:
            ignored = ", ".join(f"{name} {n}" for name, n in sorted(self.ignored_boxes.items()))
            lines.append(f"  ignored on purpose (not our classes): {ignored}")
        if self.unknown_classes:
            unknown = ", ".join(f"{name} {n}" for name, n in sorted(self.unknown_classes.items()))
            on = len(self.images_with_unknown)
            lines.append(f"  not in the class mapping (boxes dropped, on {on} images): {unknown}")
        for kind, n in self.counts_by_kind().items():
            lines.append(f"  {kind}: {n}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "images_imported": self.images_imported,
            "boxes_imported": self.boxes_imported,
            "polygons_converted": self.polygons_converted,
            "ignored_boxes": dict(sorted(self.ignored_boxes.items())),
            "unknown_classes": dict(sorted(self.unknown_classes.items())),
            "images_with_unknown": sorted(str(p) for p in self.images_with_unknown),
            "problem_counts": self.counts_by_kind(),
            "problems": [
                {"kind": p.kind.value, "file": str(p.file), "reason": p.reason} for p in self.problems
            ],
        }


@dataclass
class ImportedDataset:
    """The images of one source in our taxonomy, and the report of how they were read."""

    source: str
    images: list[LabeledImage]
    report: ImportReport

    def trainable_images(self) -> list[LabeledImage]:
        """The images safe to train on: those that lost no box to a class the mapping does not know.

        An image whose ``bin`` boxes were dropped because the mapping lacks ``bin`` still shows
        the bins; written without them it would teach the model that bins are background.
        """
        left_out = self.report.images_with_unknown
        return [image for image in self.images if image.path not in left_out]

    def check_mapped(self, hint: str) -> None:
        """Raise if the mapping knew none of the source's classes: nothing useful would be written."""
        if self.report.boxes_imported == 0 and self.report.unknown_classes:
            unknown = ", ".join(f"{name} {n}" for name, n in self.report.unknown_classes.most_common(8))
            raise DatasetError(
                f"none of {self.source}'s boxes map to our classes (not in the mapping: {unknown}); {hint}"
            )

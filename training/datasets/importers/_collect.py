"""Shared bookkeeping for importers: check images, map classes, clip boxes, record problems.

Each format module only parses its files into :class:`RawBox` lists; :class:`Collector` does
the rest the same way for every format, so a problem is reported identically wherever it occurs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from training.datasets.images import ImageReadError, ImageSize, read_image_size
from training.datasets.records import (
    ImportedDataset,
    ImportReport,
    LabeledBox,
    LabeledImage,
    ProblemKind,
)
from training.datasets.taxonomy import map_class

#: A box may overhang the image by this many pixels (rounding in the exporting tool) unreported.
CLIP_TOLERANCE_PX = 1.0
#: A box thinner than this after clipping carries no object: dropped.
MIN_BOX_SIDE_PX = 1.0


@dataclass(frozen=True)
class RawBox:
    """A box as the source gives it: its class name and pixel corners in the annotated frame."""

    source_class: str
    x1: float
    y1: float
    x2: float
    y2: float
    from_polygon: bool = False


def default_images_dir(annotation_file: Path) -> Path:
    """An ``images`` folder beside an annotation file if there is one, else the file's own folder."""
    beside = annotation_file.parent / "images"
    return beside if beside.is_dir() else annotation_file.parent


def polygon_to_box(source_class: str, xs: Iterable[float], ys: Iterable[float]) -> RawBox:
    """The min/max box around a polygon's points."""
    x_list, y_list = list(xs), list(ys)
    return RawBox(source_class, min(x_list), min(y_list), max(x_list), max(y_list), from_polygon=True)


class Collector:
    """Builds one source's :class:`ImportedDataset` from parsed annotations."""

    def __init__(self, source: str, mapping: Mapping[str, str | None], *, verify_images: bool = True) -> None:
        self.source = source
        self.mapping = mapping
        self.verify_images = verify_images
        self.report = ImportReport(source=source)
        self.images: list[LabeledImage] = []
        self._seen: set[Path] = set()

    def open_image(self, image_path: Path, referenced_by: Path) -> ImageSize | None:
        """The image's real size, or None after reporting why it cannot be used."""
        if not image_path.is_file():
            self.report.add(
                ProblemKind.missing_image,
                referenced_by,
                f"labels for {image_path.name} but no image {image_path}",
            )
            return None
        try:
            return read_image_size(image_path, full_decode=self.verify_images)
        except ImageReadError as exc:
            self.report.add(ProblemKind.unreadable_image, image_path, str(exc))
            return None

    def add_image(
        self,
        image_path: Path,
        size: ImageSize,
        raw_boxes: Iterable[RawBox],
        label_file: Path,
        origin_split: str | None = None,
    ) -> LabeledImage | None:
        """Map, clip and keep the boxes of one image; report everything that was changed or dropped."""
        resolved = image_path.resolve()
        if resolved in self._seen:
            self.report.add(ProblemKind.malformed_label, label_file, f"{image_path.name} is annotated twice")
            return None
        self._seen.add(resolved)
        boxes: list[LabeledBox] = []
        for raw in raw_boxes:
            box = self._convert(raw, size, label_file, image_path)
            if box is not None:
                boxes.append(box)
                self.report.polygons_converted += int(raw.from_polygon)
        image = LabeledImage(
            path=image_path,
            width=size.width,
            height=size.height,
            boxes=tuple(boxes),
            source=self.source,
            origin_split=origin_split,
        )
        self.images.append(image)
        self.report.images_imported += 1
        self.report.boxes_imported += len(boxes)
        return image

    def _convert(self, raw: RawBox, size: ImageSize, label_file: Path, image_path: Path) -> LabeledBox | None:
        known, ours = map_class(self.mapping, raw.source_class)
        if not known:
            self.report.unknown_classes[raw.source_class] += 1
            self.report.images_with_unknown.add(image_path)
            self.report.add(
                ProblemKind.unknown_class,
                label_file,
                f"class {raw.source_class!r} on {image_path.name} is not in the class mapping; box dropped",
            )
            return None
        if ours is None:
            self.report.ignored_boxes[raw.source_class] += 1
            return None
        where = f"{ours} box ({raw.x1:.1f}, {raw.y1:.1f}, {raw.x2:.1f}, {raw.y2:.1f}) on {image_path.name}"
        if not (raw.x2 > raw.x1 and raw.y2 > raw.y1):
            self.report.add(ProblemKind.box_dropped, label_file, f"{where} has no area")
            return None
        if raw.x2 - raw.x1 < MIN_BOX_SIDE_PX or raw.y2 - raw.y1 < MIN_BOX_SIDE_PX:
            self.report.add(
                ProblemKind.box_dropped, label_file, f"{where} is thinner than {MIN_BOX_SIDE_PX:g} px"
            )
            return None
        x1, x2 = max(raw.x1, 0.0), min(raw.x2, float(size.width))
        y1, y2 = max(raw.y1, 0.0), min(raw.y2, float(size.height))
        if x2 - x1 < MIN_BOX_SIDE_PX or y2 - y1 < MIN_BOX_SIDE_PX:
            self.report.add(
                ProblemKind.box_dropped,
                label_file,
                f"{where} lies outside the {size.width}x{size.height} image",
            )
            return None
        overhang = max(x1 - raw.x1, raw.x2 - x2, y1 - raw.y1, raw.y2 - y2)
        if overhang > CLIP_TOLERANCE_PX:
            self.report.add(
                ProblemKind.box_clipped,
                label_file,
                f"{where} overhangs the {size.width}x{size.height} image by {overhang:.1f} px; clipped",
            )
        return LabeledBox(ours, x1, y1, x2, y2)

    def result(self) -> ImportedDataset:
        return ImportedDataset(source=self.source, images=self.images, report=self.report)

"""Import a COCO detection JSON: ``images``, ``categories``, ``annotations`` with ``bbox`` = x, y, w, h px.

Images are looked up as ``images_dir / file_name``; by default ``images_dir`` is an ``images`` folder
beside the JSON if there is one, else the JSON's folder.
Crowd annotations (``iscrowd: 1``) mark a region of many objects, not one box: they are ignored.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streetwatch.errors import DatasetError
from training.datasets.importers._collect import Collector, RawBox, default_images_dir
from training.datasets.records import ImportedDataset, ProblemKind


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"COCO annotation file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read COCO annotation file {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("images"), list):
        raise DatasetError(f"{path} is not a COCO detection file: no 'images' list")
    return raw


def import_coco(
    annotation_file: Path,
    *,
    source: str,
    mapping: Mapping[str, str | None],
    images_dir: Path | None = None,
    verify_images: bool = True,
) -> ImportedDataset:
    annotation_file = Path(annotation_file)
    raw = _load(annotation_file)
    base = Path(images_dir) if images_dir is not None else default_images_dir(annotation_file)
    categories = {c["id"]: str(c["name"]) for c in raw.get("categories", []) if isinstance(c, dict)}
    by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for annotation in raw.get("annotations", []):
        if isinstance(annotation, dict):
            by_image[annotation.get("image_id")].append(annotation)
    collector = Collector(source, mapping, verify_images=verify_images)
    for entry in raw["images"]:
        if not isinstance(entry, dict) or "file_name" not in entry:
            collector.report.add(
                ProblemKind.malformed_label, annotation_file, f"image entry without file_name: {entry}"
            )
            continue
        image_path = base / str(entry["file_name"])
        size = collector.open_image(image_path, referenced_by=annotation_file)
        if size is None:
            continue
        declared = (entry.get("width"), entry.get("height"))
        if None not in declared and declared != (size.width, size.height):
            collector.report.add(
                ProblemKind.size_mismatch,
                annotation_file,
                f"{image_path.name} is {size.width}x{size.height} but annotated as"
                f" {declared[0]}x{declared[1]}; image skipped (its boxes would land in the wrong place)",
            )
            continue
        raw_boxes = []
        for annotation in by_image.get(entry.get("id"), []):
            box = _box_of(annotation, categories, annotation_file, collector)
            if box is not None:
                raw_boxes.append(box)
        collector.add_image(image_path, size, raw_boxes, annotation_file)
    return collector.result()


def _box_of(
    annotation: dict[str, Any], categories: dict[Any, str], annotation_file: Path, collector: Collector
) -> RawBox | None:
    category = annotation.get("category_id")
    if category not in categories:
        collector.report.add(
            ProblemKind.class_id_out_of_range,
            annotation_file,
            f"annotation {annotation.get('id')} has category_id {category} that no category defines",
        )
        return None
    if annotation.get("iscrowd"):
        collector.report.ignored_boxes[f"{categories[category]} (crowd)"] += 1
        return None
    bbox = annotation.get("bbox")
    try:
        x, y, w, h = (float(v) for v in bbox)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        collector.report.add(
            ProblemKind.malformed_label,
            annotation_file,
            f"annotation {annotation.get('id')} has no valid bbox: {bbox}",
        )
        return None
    return RawBox(categories[category], x, y, x + w, y + h)

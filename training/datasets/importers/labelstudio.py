"""Import a Label Studio JSON export (a list of tasks) with ``rectanglelabels`` or ``polygonlabels`` results.

Label Studio stores coordinates in percent of the image (0-100) and rotates rectangles about their
top-left corner by ``rotation`` degrees; a rotated rectangle becomes the box around its corners.
The task's ``data.image`` is a URL or path whose last part names the file: it is looked up in
``images_dir`` (by default an ``images`` folder beside the JSON, else the JSON's folder). The
first annotation that was not cancelled is used.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from streetwatch.errors import DatasetError
from training.datasets.images import ImageSize
from training.datasets.importers._collect import Collector, RawBox, default_images_dir, polygon_to_box
from training.datasets.records import ImportedDataset, ProblemKind

_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")


def image_file_name(reference: str) -> str:
    """File name from a task's image reference.

    Handles ``/data/upload/1/x.jpg``, ``/data/local-files/?d=a/x.jpg`` and plain URLs.
    """
    parsed = urlparse(reference)
    local = parse_qs(parsed.query).get("d")
    path = local[0] if local else parsed.path
    return Path(unquote(path)).name


def import_labelstudio(
    json_file: Path,
    *,
    source: str,
    mapping: Mapping[str, str | None],
    images_dir: Path | None = None,
    verify_images: bool = True,
) -> ImportedDataset:
    json_file = Path(json_file)
    try:
        tasks = json.loads(json_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"Label Studio export {json_file} does not exist") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read Label Studio export {json_file}: {exc}") from exc
    if not isinstance(tasks, list):
        raise DatasetError(f"{json_file} is not a Label Studio JSON export (expected a list of tasks)")
    base = Path(images_dir) if images_dir is not None else default_images_dir(json_file)
    collector = Collector(source, mapping, verify_images=verify_images)
    for task in tasks:
        reference = task.get("data", {}).get("image") if isinstance(task, dict) else None
        if not isinstance(reference, str):
            collector.report.add(
                ProblemKind.malformed_label, json_file, f"task {_task_id(task)} has no data.image"
            )
            continue
        image_path = _locate(base, image_file_name(reference))
        size = collector.open_image(image_path, referenced_by=json_file)
        if size is None:
            continue
        results = _first_annotation(task)
        raw_boxes = [
            b for r in results if (b := _result_box(r, size, json_file, image_path, collector)) is not None
        ]
        collector.add_image(image_path, size, raw_boxes, json_file)
    return collector.result()


def _locate(base: Path, name: str) -> Path:
    """Uploaded files get an 8-hex-digit prefix (``5f1c2a9e-x.jpg``); accept the original name too."""
    path = base / name
    if not path.is_file() and _UPLOAD_PREFIX.match(name):
        original = base / _UPLOAD_PREFIX.sub("", name, count=1)
        if original.is_file():
            return original
    return path


def _task_id(task: Any) -> Any:
    return task.get("id") if isinstance(task, dict) else None


def _first_annotation(task: dict[str, Any]) -> list[dict[str, Any]]:
    for annotation in task.get("annotations") or []:
        if isinstance(annotation, dict) and not annotation.get("was_cancelled"):
            return [r for r in annotation.get("result") or [] if isinstance(r, dict)]
    return []


def _result_box(
    result: dict[str, Any], size: ImageSize, json_file: Path, image_path: Path, collector: Collector
) -> RawBox | None:
    kind = result.get("type")
    value = result.get("value") or {}
    labels = value.get(kind) if isinstance(kind, str) else None
    if kind not in ("rectanglelabels", "polygonlabels"):
        return None  # choices, text areas, key points: not boxes
    if not labels:
        collector.report.add(
            ProblemKind.malformed_label, json_file, f"{kind} result on {image_path.name} has no label"
        )
        return None
    label = str(labels[0])
    w, h = size.width, size.height
    try:
        if kind == "polygonlabels":
            points = [(float(x) * w / 100, float(y) * h / 100) for x, y in value["points"]]
            return polygon_to_box(label, (p[0] for p in points), (p[1] for p in points))
        x, y = float(value["x"]) * w / 100, float(value["y"]) * h / 100
        bw, bh = float(value["width"]) * w / 100, float(value["height"]) * h / 100
        angle = math.radians(float(value.get("rotation") or 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        collector.report.add(
            ProblemKind.malformed_label, json_file, f"{kind} on {image_path.name}: bad value ({exc})"
        )
        return None
    if angle == 0.0:
        return RawBox(label, x, y, x + bw, y + bh)
    cos, sin = math.cos(angle), math.sin(angle)
    corners = [
        (x + dx * cos - dy * sin, y + dx * sin + dy * cos) for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))
    ]
    return RawBox(label, *_bounds(corners))


def _bounds(points: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return min(xs), min(ys), max(xs), max(ys)

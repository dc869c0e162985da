"""Import a YOLO-layout dataset: one ``.txt`` per image, ``class cx cy w h`` normalised to the image.

Lines with more than four numbers are polygons (``class x1 y1 x2 y2 x3 y3 ...``, as segmentation
exports write them); they become the min/max box of their points. Class names come from a
``data.yaml`` (``names`` as a list or an ``{id: name}`` map), a ``classes.txt``/``obj.names`` file,
or the ``names`` argument. Images are found in every ``images`` folder under the root; the label
of ``.../images/x.jpg`` is ``.../labels/x.txt`` (the ultralytics rule).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from streetwatch.errors import DatasetError
from training.datasets.images import ImageSize, is_image_file
from training.datasets.importers._collect import Collector, RawBox, polygon_to_box
from training.datasets.records import ImportedDataset, ProblemKind

#: Written by :mod:`training.datasets.yolo_writer`: remembers each image's source across merges.
MANIFEST_NAME = "manifest.json"
_NAME_FILES = ("classes.txt", "obj.names", "names.txt")
_SPLIT_NAMES = ("train", "val", "valid", "test")


def read_class_names(root: Path, names: Sequence[str] | None = None) -> list[str]:
    """The dataset's class names by id: explicit ``names`` win, then data.yaml, then a names file."""
    if names is not None:
        return list(names)
    data_yaml = find_data_yaml(root)
    if data_yaml is not None:
        raw = _load_yaml(data_yaml)
        value = raw.get("names")
        if isinstance(value, list):
            return [str(n) for n in value]
        if isinstance(value, dict):
            ids = sorted(int(k) for k in value)
            if ids != list(range(len(ids))):
                raise DatasetError(f"{data_yaml}: names ids must be 0..N-1, got {ids}")
            return [str(value[k]) for k in sorted(value, key=int)]
        raise DatasetError(f"{data_yaml} has no 'names' list or map")
    for file_name in _NAME_FILES:
        candidate = root / file_name
        if candidate.is_file():
            return [
                line.strip() for line in candidate.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
    raise DatasetError(
        f"no class names for the YOLO dataset {root}: add a data.yaml with 'names' or a classes.txt, "
        "or pass the names (e.g. --names garbage,garbage_bin,overflow)"
    )


def find_data_yaml(root: Path) -> Path | None:
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        if (root / name).is_file():
            return root / name
    return None


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DatasetError(f"{path} is not a YAML mapping")
    return raw


def _split_of(image_path: Path, root: Path) -> str | None:
    """The split a folder between ``root`` and the image names (``<split>/images`` or ``images/<split>``)."""
    for part in image_path.parent.relative_to(root).parts:
        if part in _SPLIT_NAMES:
            return "val" if part == "valid" else part
    return None


def _image_dirs(root: Path) -> list[Path]:
    """Every folder named ``images`` under ``root`` (or root itself if it holds images directly)."""
    if root.name == "images":
        return [root]
    found = sorted(p for p in root.rglob("images") if p.is_dir())
    if not found:
        raise DatasetError(
            f"no 'images' folder under {root}; expected <root>/<split>/images or <root>/images"
        )
    return found


def label_path_for(image_path: Path) -> Path:
    """``.../images/a/b.jpg`` -> ``.../labels/a/b.txt`` (the last ``images`` component is replaced)."""
    parts = list(image_path.parts)
    index = len(parts) - 1 - parts[::-1].index("images")
    parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def _parse_line(line: str, names: Sequence[str], size: ImageSize) -> RawBox | str:
    """A box, or the reason the line cannot be used."""
    tokens = line.split()
    try:
        class_value = float(tokens[0])
        numbers = [float(t) for t in tokens[1:]]
    except ValueError:
        return f"not numbers: {line.strip()!r}"
    if not class_value.is_integer():
        return f"class id {tokens[0]!r} is not an integer"
    class_id = int(class_value)
    if not 0 <= class_id < len(names):
        return f"class id {class_id} out of range: {len(names)} names ({', '.join(names)})"
    w, h = size.width, size.height
    if len(numbers) == 4:
        cx, cy, bw, bh = numbers
        return RawBox(
            names[class_id], (cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h
        )
    if len(numbers) >= 6 and len(numbers) % 2 == 0:
        return polygon_to_box(names[class_id], (x * w for x in numbers[0::2]), (y * h for y in numbers[1::2]))
    return f"{len(numbers)} numbers after the class id: neither a box (4) nor a polygon (even, >= 6)"


def import_yolo(
    root: Path,
    *,
    source: str,
    mapping: Mapping[str, str | None],
    names: Sequence[str] | None = None,
    verify_images: bool = True,
) -> ImportedDataset:
    """Import every image under ``root``; problems go to the report, never stop the import."""
    root = Path(root)
    if root.is_file():
        raise DatasetError(f"{root} is a file; a YOLO dataset is a folder (with data.yaml or classes.txt)")
    if not root.is_dir():
        raise DatasetError(f"YOLO dataset folder {root} does not exist")
    class_names = read_class_names(root, names)
    collector = Collector(source, mapping, verify_images=verify_images)
    for images_dir in _image_dirs(root):
        image_stems: set[Path] = set()
        for image_path in sorted(p for p in images_dir.rglob("*") if p.is_file() and is_image_file(p)):
            label_file = label_path_for(image_path)
            image_stems.add(label_file.with_suffix(""))
            size = collector.open_image(image_path, referenced_by=label_file)
            if size is None:
                continue
            raw_boxes: list[RawBox] = []
            if label_file.is_file():
                raw_boxes = _read_label_file(label_file, class_names, size, collector)
            collector.add_image(
                image_path, size, raw_boxes, label_file, origin_split=_split_of(image_path, root)
            )
        _report_orphan_labels(label_path_for(images_dir / "x.jpg").parent, image_stems, collector)
    result = collector.result()
    _apply_manifest(root, result)
    return result


def _read_label_file(
    label_file: Path, names: Sequence[str], size: ImageSize, collector: Collector
) -> list[RawBox]:
    try:
        text = label_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        collector.report.add(ProblemKind.malformed_label, label_file, f"cannot read label file: {exc}")
        return []
    boxes: list[RawBox] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parsed = _parse_line(line, names, size)
        if isinstance(parsed, RawBox):
            boxes.append(parsed)
            continue
        kind = ProblemKind.class_id_out_of_range if "out of range" in parsed else ProblemKind.malformed_label
        collector.report.add(kind, label_file, f"line {number}: {parsed}")
    return boxes


def _report_orphan_labels(labels_dir: Path, image_stems: set[Path], collector: Collector) -> None:
    if not labels_dir.is_dir():
        return
    for label_file in sorted(labels_dir.rglob("*.txt")):
        if label_file.name in _NAME_FILES:
            continue
        if label_file.with_suffix("") not in image_stems:
            collector.report.add(
                ProblemKind.missing_image,
                label_file,
                f"label file without an image named {label_file.stem}.*",
            )


def _apply_manifest(root: Path, result: ImportedDataset) -> None:
    """Restore per-image sources recorded when StreetWatch wrote this dataset (merged sets)."""
    manifest_file = root / MANIFEST_NAME
    if not manifest_file.is_file():
        return
    try:
        entries = json.loads(manifest_file.read_text(encoding="utf-8"))["images"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"cannot read {manifest_file}: {exc}") from exc
    for index, image in enumerate(result.images):
        entry = entries.get(image.path.relative_to(root).as_posix())
        if isinstance(entry, dict) and isinstance(entry.get("source"), str):
            result.images[index] = dataclasses.replace(image, source=entry["source"])
    sources = {image.source for image in result.images}
    if len(sources) == 1:  # one source's import: report it by its name, not the folder's
        result.report.source = sources.pop()

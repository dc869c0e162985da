"""Write images and boxes as a YOLO dataset that ``ultralytics`` trains from.

Layout: ``images/<split>/``, ``labels/<split>/`` and a ``data.yaml`` whose ``names`` are the
class names given (normally the taxonomy's trained classes, in classes.yaml order, so class ids
are the same in every dataset and model). A ``manifest.json`` records each image's source and
near-duplicate group, so a later merge, split or stats run still knows where an image came from.
Images are hard-linked when the file system allows it (no copy of a large set), else copied.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from streetwatch.errors import DatasetError
from training.datasets.importers.yolo import MANIFEST_NAME
from training.datasets.records import LabeledImage

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class WriteReport:
    out_dir: Path
    data_yaml: Path
    images_per_split: dict[str, int] = field(default_factory=dict)
    boxes_written: int = 0
    dropped_boxes: Counter[str] = field(default_factory=Counter)  # classes outside the model's list
    linked: int = 0
    copied: int = 0


def _place(source: Path, target: Path, link: bool) -> bool:
    """Hard-link ``source`` to ``target`` (True) or copy it when linking is not possible (False)."""
    if link:
        try:
            os.link(source, target)
            return True
        except OSError:
            pass  # another file system, or links not allowed: copy instead
    shutil.copy2(source, target)
    return False


def _overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def check_output_folder(out_dir: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output folder that would lose data, before any slow work is done.

    The folder must be new or empty, or (with ``overwrite``) one we wrote earlier; and it may
    neither be, contain nor sit inside an input: writing there would delete what is being read.
    """
    out_dir = Path(out_dir).resolve()
    for source in inputs:
        source = Path(source).resolve()
        if _overlaps(out_dir, source):
            raise DatasetError(
                f"output folder {out_dir} overlaps the input {source}; write to a folder outside it"
            )
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetError(f"output {out_dir} is a file, not a folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise DatasetError(
                f"output folder {out_dir} is not empty; choose a new folder or pass --overwrite"
            )
        if not (out_dir / MANIFEST_NAME).is_file():
            raise DatasetError(
                f"refusing to overwrite {out_dir}: it was not written by StreetWatch (no {MANIFEST_NAME})"
            )


def _prepare_out_dir(out_dir: Path, overwrite: bool, image_paths: Sequence[Path]) -> None:
    # Every image must survive the clean-up below: none may live inside the output folder.
    inside = next((p for p in image_paths if out_dir in Path(p).resolve().parents), None)
    if inside is not None:
        raise DatasetError(
            f"output folder {out_dir} holds input images (e.g. {inside}); write to a folder outside it"
        )
    check_output_folder(out_dir, overwrite)
    if out_dir.exists() and any(out_dir.iterdir()):
        for sub in ("images", "labels"):
            shutil.rmtree(out_dir / sub, ignore_errors=True)
        for stale in ("data.yaml", MANIFEST_NAME):
            (out_dir / stale).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)


def yolo_label_lines(image: LabeledImage, class_ids: Mapping[str, int]) -> list[str]:
    lines = []
    for box in image.boxes:
        if box.class_name not in class_ids:
            continue
        cx = (box.x1 + box.x2) / 2 / image.width
        cy = (box.y1 + box.y2) / 2 / image.height
        w, h = box.width / image.width, box.height / image.height
        # Round off the pixel round trip's float noise (~1e-16) first: a source fraction on a
        # 6-decimal tie (0.1609375) then prints as the source's own text would (0.160938).
        cx, cy, w, h = (round(v, 12) for v in (cx, cy, w, h))
        lines.append(f"{class_ids[box.class_name]} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def write_yolo_dataset(
    splits: Mapping[str, Sequence[LabeledImage]],
    out_dir: Path,
    class_names: Sequence[str],
    *,
    groups: Mapping[Path, int] | None = None,
    source_classes: Mapping[str, Sequence[str]] | None = None,
    link: bool = True,
    overwrite: bool = False,
) -> WriteReport:
    """Write ``splits`` (e.g. ``{"train": [...], "val": [...]}``) under ``out_dir``.

    ``groups`` maps image paths to near-duplicate group ids and ``source_classes`` lists the
    classes each source labels (a merged set's images are only labelled for their source's
    classes); both are recorded in the manifest for the trainer.
    """
    out_dir = Path(out_dir).resolve()
    if not class_names:
        raise DatasetError("no class names to write into data.yaml")
    _prepare_out_dir(out_dir, overwrite, [image.path for images in splits.values() for image in images])
    class_ids = {name: index for index, name in enumerate(class_names)}
    report = WriteReport(out_dir=out_dir, data_yaml=out_dir / "data.yaml")
    manifest: dict[str, dict[str, object]] = {}
    used_names: set[str] = set()
    for split, images in splits.items():
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
        (out_dir / "labels" / split).mkdir(parents=True, exist_ok=True)
        for image in images:
            name = _unique_name(image, used_names)
            target = out_dir / "images" / split / name
            if _place(image.path, target, link):
                report.linked += 1
            else:
                report.copied += 1
            lines = yolo_label_lines(image, class_ids)
            report.boxes_written += len(lines)
            report.dropped_boxes.update(b.class_name for b in image.boxes if b.class_name not in class_ids)
            label_text = "\n".join(lines) + ("\n" if lines else "")
            (out_dir / "labels" / split / name).with_suffix(".txt").write_text(label_text, encoding="utf-8")
            manifest[target.relative_to(out_dir).as_posix()] = {
                "source": image.source,
                "origin": str(image.path),
                "group": None if groups is None else groups.get(image.path),
            }
        report.images_per_split[split] = len(images)
    data = {"path": str(out_dir), **{s: f"images/{s}" for s in splits}, "names": dict(enumerate(class_names))}
    report.data_yaml.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    manifest_doc = {
        "format": "streetwatch-yolo",
        "version": 1,
        "classes": list(class_names),
        "source_classes": {k: list(v) for k, v in (source_classes or {}).items()},
        "images": manifest,
    }
    (out_dir / MANIFEST_NAME).write_text(
        json.dumps(manifest_doc, indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return report


def _unique_name(image: LabeledImage, used: set[str]) -> str:
    # Images read back from a set we wrote already carry their source prefix.
    prefix = f"{image.source}__"
    stem = image.path.stem if image.path.stem.startswith(prefix) else prefix + image.path.stem
    stem = _UNSAFE.sub("_", stem)
    suffix = image.path.suffix.lower()
    name, counter = f"{stem}{suffix}", 1
    while name.lower() in used:
        counter += 1
        name = f"{stem}_{counter}{suffix}"
    used.add(name.lower())
    return name

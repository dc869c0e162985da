"""Recipe for the first StreetWatch detector: merge the real sets into one YOLO dataset.

Sources (each in YOLO layout ``<set>/{train,val}/{images,labels}``):

- ``garbage``   classes garbage, garbage_bin, overflow (some label lines are polygons -> min/max box)
- ``signboards``  class signboard
- ``vehicles``  classes car, motor, truck, bus

Each source labels only its own classes. Vehicles in the garbage and signboard photos are
pseudo-labelled with the COCO YOLOX-nano model at a high confidence, so the merged set does
not teach the model that those cars and trucks are background. The opposite direction has
no teacher yet: garbage and signboards visible in the traffic-camera photos stay unlabelled
(they are rare and small in those elevated views; the model card records this gap).

The sources are read, never written: the merged set (images copied, labels rewritten) goes
to ``--out``, where ultralytics may put its ``labels.cache`` files.

Re-run with::

    python -m training.recipes.first_model --data ../shared/data --out /work/runs/data
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

#: The detector classes of the first model, in output order.
CLASSES: list[str] = ["garbage", "garbage_bin", "overflow", "signboard", "car", "motor", "truck", "bus"]

#: Source folder -> (source class id -> our class name).
SOURCES: dict[str, dict[int, str]] = {
    "garbage": {0: "garbage", 1: "garbage_bin", 2: "overflow"},
    "signboards": {0: "signboard"},
    "vehicles": {0: "car", 1: "motor", 2: "truck", 3: "bus"},
}

#: Sources whose photos lack vehicle labels: YOLOX-nano fills them in.
PSEUDO_LABEL_VEHICLES_IN: tuple[str, ...] = ("garbage", "signboards")

#: The signboard set is ~10x smaller than the others; repeating its train list evens the classes out.
TRAIN_REPEATS: dict[str, int] = {"signboards": 2}

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class PrepareReport:
    images: Counter[str] = field(default_factory=Counter)
    boxes: Counter[str] = field(default_factory=Counter)
    pseudo_boxes: Counter[str] = field(default_factory=Counter)
    polygons: int = 0
    problems: list[str] = field(default_factory=list)


def parse_label_line(line: str) -> tuple[int, float, float, float, float] | None:
    """One YOLO label line (box or polygon) -> (class, cx, cy, w, h) normalised; None if blank."""
    parts = line.split()
    if not parts:
        return None
    cls = int(parts[0])
    values = [float(v) for v in parts[1:]]
    if len(values) == 4:
        cx, cy, w, h = values
        return cls, cx, cy, w, h
    if len(values) >= 6 and len(values) % 2 == 0:
        xs, ys = values[0::2], values[1::2]
        x1, x2 = max(0.0, min(xs)), min(1.0, max(xs))
        y1, y2 = max(0.0, min(ys)), min(1.0, max(ys))
        return cls, (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    raise ValueError(f"expected 4 box values or an even number >= 6 of polygon values, got {len(values)}")


def _convert_labels(label_path: Path, mapping: dict[int, str], report: PrepareReport) -> list[str]:
    lines: list[str] = []
    if not label_path.exists():
        return lines
    for number, raw in enumerate(label_path.read_text().splitlines(), start=1):
        try:
            parsed = parse_label_line(raw)
        except ValueError as exc:
            report.problems.append(f"{label_path}:{number}: {exc}")
            continue
        if parsed is None:
            continue
        cls, cx, cy, w, h = parsed
        if cls not in mapping:
            report.problems.append(f"{label_path}:{number}: class id {cls} not in {sorted(mapping)}")
            continue
        if len(raw.split()) > 5:
            report.polygons += 1
        name = mapping[cls]
        report.boxes[name] += 1
        lines.append(f"{CLASSES.index(name)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    return lines


def prepare(
    data: Path, out: Path, yolox: Path | None, conf: float = 0.5, limit: int | None = None
) -> PrepareReport:
    """Build ``out/{train,val}/{images,labels}`` plus ``out/data.yaml`` from the sources under ``data``.

    ``limit`` keeps only the first N images of each source split (small sets for tests).
    """
    import cv2

    from training.data_hash import dataset_hash
    from training.pseudo_label import YoloxPseudoLabeler

    report = PrepareReport()
    labeler = YoloxPseudoLabeler(yolox, conf=conf) if yolox else None
    train_list: list[str] = []
    for split in ("train", "val"):
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
    for source, mapping in SOURCES.items():
        for split in ("train", "val"):
            image_dir = data / source / split / "images"
            if not image_dir.is_dir():
                raise FileNotFoundError(f"missing source folder {image_dir}")
            images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for image_path in images[:limit]:
                label_path = data / source / split / "labels" / f"{image_path.stem}.txt"
                lines = _convert_labels(label_path, mapping, report)
                if labeler is not None and source in PSEUDO_LABEL_VEHICLES_IN:
                    image = cv2.imread(str(image_path))
                    if image is None:
                        report.problems.append(f"{image_path}: unreadable image, skipped")
                        continue
                    h, w = image.shape[:2]
                    for box in labeler(image):
                        x1, y1 = max(0.0, box.x1), max(0.0, box.y1)
                        x2, y2 = min(float(w), box.x2), min(float(h), box.y2)
                        if x2 <= x1 or y2 <= y1:
                            continue
                        report.pseudo_boxes[box.class_name] += 1
                        cx, cy = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h
                        bw, bh = (x2 - x1) / w, (y2 - y1) / h
                        lines.append(f"{CLASSES.index(box.class_name)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
                name = f"{source}__{image_path.name}"
                target = out / split / "images" / name
                shutil.copy2(image_path, target)
                (out / split / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines) + "\n")
                report.images[f"{source}/{split}"] += 1
                if split == "train":
                    train_list.extend([str(target)] * TRAIN_REPEATS.get(source, 1))
    (out / "train.txt").write_text("\n".join(train_list) + "\n")
    data_yaml = {
        "path": str(out),
        "train": "train.txt",
        "val": "val/images",
        "names": dict(enumerate(CLASSES)),
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False))
    (out / "prepare_report.json").write_text(
        json.dumps(
            {
                "images": dict(report.images),
                "boxes": dict(report.boxes),
                "pseudo_boxes": dict(report.pseudo_boxes),
                "polygons_to_boxes": report.polygons,
                "pseudo_label_conf": conf if labeler else None,
                "problems": report.problems,
                "data_hash": dataset_hash(out / "data.yaml"),
            },
            indent=2,
        )
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Merge the real StreetWatch sets into one YOLO dataset.")
    parser.add_argument(
        "--data", type=Path, required=True, help="folder holding garbage/, signboards/, vehicles/"
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="output folder (created; must be empty or absent)"
    )
    parser.add_argument(
        "--yolox",
        type=Path,
        default=None,
        help="YOLOX-nano ONNX for vehicle pseudo-labels (default: <data>/weights/yolox_nano.onnx)",
    )
    parser.add_argument("--conf", type=float, default=0.5, help="pseudo-label confidence threshold")
    parser.add_argument("--no-pseudo", action="store_true", help="skip vehicle pseudo-labelling")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"error: {args.out} is not empty; pick a new folder", file=sys.stderr)
        return 1
    yolox = None if args.no_pseudo else (args.yolox or args.data / "weights" / "yolox_nano.onnx")
    report = prepare(args.data, args.out, yolox, conf=args.conf)
    print(
        json.dumps(
            {
                "images": dict(report.images),
                "boxes": dict(report.boxes),
                "pseudo_boxes": dict(report.pseudo_boxes),
                "polygons": report.polygons,
                "problems": len(report.problems),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

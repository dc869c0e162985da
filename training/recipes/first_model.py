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

The sources are read with the dataset package's YOLO importer
(:func:`training.datasets.importers.yolo.import_yolo`) and label lines are written with its
YOLO writer's :func:`~training.datasets.yolo_writer.yolo_label_lines`; the layout stays this
recipe's own (``{train,val}/{images,labels}``, ``train.txt`` with the signboard repeats).
The sources are read, never written: the merged set (images copied, labels rewritten) goes
to ``--out``, where ultralytics may put its ``labels.cache`` files.

Teacher boxes are cleaned before they join (:mod:`training.pseudo_clean`): trucks need a
score of 0.7, and a teacher box lying mostly inside a box the source labelled (a bin, a
pile) is dropped; ``prepare_report.json`` counts both. streetwatch-det up to 1.2.0 trained
on a build from before that cleaning (the model card gives the numbers).

Since the importer took over the parsing, a build differs from the one streetwatch-det 1.0.0
to 1.2.0 trained on (data hash ``fc0f96c1...``) in 6 of 2308 label files: 4 signboard boxes
that overhang the photo by up to 1.6 px are clipped to it, and 2 vehicle boxes narrower than
1 px (vehicles/train vnv_119_jpg, vnv_659_png) are dropped. Ultralytics clips boxes to the
image itself and drops boxes under 2 px when it augments, so training sees the same targets.

Re-run with::

    python -m training.recipes.first_model --data ../shared/data --out /work/runs/data
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from bench.label_completion import CompletionBox, read_completion
from training.datasets.importers.yolo import import_yolo
from training.datasets.records import ImportedDataset, LabeledBox, LabeledImage
from training.datasets.yolo_writer import yolo_label_lines
from training.recipes.completion import complete_image, without_duplicates

if TYPE_CHECKING:
    from training.pseudo_label import YoloxPseudoLabeler

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

#: The signboard set is ~10x smaller than the others; repeating its train list evens the classes out
#: (2 up to 1.3.0, 3 since 1.4.0).
TRAIN_REPEATS: dict[str, int] = {"signboards": 3}


@dataclass
class PrepareReport:
    images: Counter[str] = field(default_factory=Counter)
    boxes: Counter[str] = field(default_factory=Counter)
    pseudo_boxes: Counter[str] = field(default_factory=Counter)
    pseudo_dropped: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)
    polygons: int = 0
    problems: list[str] = field(default_factory=list)


def _import_source(data: Path, source: str, verify_images: bool) -> ImportedDataset:
    """One source read by the dataset package's YOLO importer, its class ids named with our classes."""
    mapping = SOURCES[source]
    names = [mapping[class_id] for class_id in range(len(mapping))]
    for split in ("train", "val"):
        image_dir = data / source / split / "images"
        if not image_dir.is_dir():
            raise FileNotFoundError(f"missing source folder {image_dir}")
    return import_yolo(
        data / source,
        source=source,
        mapping={name: name for name in names},
        names=names,
        verify_images=verify_images,
    )


def _pseudo_vehicle_image(
    image: LabeledImage, labeler: YoloxPseudoLabeler, dropped: Counter[str]
) -> LabeledImage | None:
    """The teacher's vehicle boxes on ``image`` (clipped to it, cleaned by
    :func:`training.pseudo_clean.clean_pseudo_boxes`); None if OpenCV cannot read the file."""
    import cv2

    from training.pseudo_clean import clean_pseudo_boxes

    pixels = cv2.imread(str(image.path))
    if pixels is None:
        return None
    # The size OpenCV decoded (EXIF rotation applied) is the frame the teacher's boxes are in.
    h, w = pixels.shape[:2]
    kept, why = clean_pseudo_boxes(labeler(pixels), image.boxes)
    dropped.update(why)
    boxes: list[LabeledBox] = []
    for box in kept:
        x1, y1 = max(0.0, box.x1), max(0.0, box.y1)
        x2, y2 = min(float(w), box.x2), min(float(h), box.y2)
        if x2 > x1 and y2 > y1:
            boxes.append(LabeledBox(box.class_name, x1, y1, x2, y2))
    return dataclasses.replace(image, width=w, height=h, boxes=tuple(boxes))


def prepare(
    data: Path,
    out: Path,
    yolox: Path | None,
    conf: float = 0.5,
    limit: int | None = None,
    completion: Mapping[str, Mapping[str, Sequence[CompletionBox]]] | None = None,
) -> PrepareReport:
    """Build ``out/{train,val}/{images,labels}`` plus ``out/data.yaml`` from the sources under ``data``.

    ``limit`` keeps only the first N images of each source split (small sets for tests).
    ``completion`` maps a split to the team's completion rows per photo (``<set>/<file>``,
    :func:`bench.label_completion.read_completion`), applied by :mod:`training.recipes.completion`.
    """
    from training.data_hash import dataset_hash
    from training.pseudo_label import YoloxPseudoLabeler

    report = PrepareReport()
    labeler = YoloxPseudoLabeler(yolox, conf=conf) if yolox else None
    class_ids = {name: index for index, name in enumerate(CLASSES)}
    train_list: list[str] = []
    matched: set[tuple[str, str]] = set()  # (split, <set>/<file>) the completion was applied to
    train_lists: dict[str, list[str]] = {source: [] for source in SOURCES}
    val_lists: dict[str, list[str]] = {source: [] for source in SOURCES}
    for split in ("train", "val"):
        (out / split / "images").mkdir(parents=True, exist_ok=True)
        (out / split / "labels").mkdir(parents=True, exist_ok=True)
    for source in SOURCES:
        # A full decode of every photo proves the files whole; a limited (test) build skips it.
        imported = _import_source(data, source, verify_images=limit is None)
        # Counted over the whole source, also when ``limit`` keeps fewer images.
        report.polygons += imported.report.polygons_converted
        report.problems.extend(str(problem) for problem in imported.report.problems)
        for split in ("train", "val"):
            # Each source's own train/val folders are the split of the merged set.
            images = [image for image in imported.images if image.origin_split == split]
            completed = (completion or {}).get(split, {})
            for image in images[:limit]:
                rows = completed.get(f"{source}/{image.path.name}", ())
                if rows:
                    matched.add((split, f"{source}/{image.path.name}"))
                    image = complete_image(image, rows, report.completed)
                lines = yolo_label_lines(image, class_ids)
                report.boxes.update(box.class_name for box in image.boxes)
                if labeler is not None and source in PSEUDO_LABEL_VEHICLES_IN:
                    pseudo = _pseudo_vehicle_image(image, labeler, report.pseudo_dropped)
                    if pseudo is None:
                        report.problems.append(f"{image.path}: unreadable image, skipped")
                        continue
                    if rows:
                        pseudo = dataclasses.replace(
                            pseudo, boxes=tuple(without_duplicates(pseudo.boxes, rows))
                        )
                    lines += yolo_label_lines(pseudo, class_ids)
                    report.pseudo_boxes.update(box.class_name for box in pseudo.boxes)
                name = f"{source}__{image.path.name}"
                target = out / split / "images" / name
                shutil.copy2(image.path, target)
                (out / split / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines) + "\n")
                report.images[f"{source}/{split}"] += 1
                if split == "train":
                    train_list.extend([str(target)] * TRAIN_REPEATS.get(source, 1))
                    train_lists[source].append(str(target))
                else:
                    val_lists[source].append(str(target))
    if limit is None:  # a completion row naming no photo of the build is a typo or another split
        for split, rows_by_photo in (completion or {}).items():
            for photo in sorted(set(rows_by_photo) - {name for s, name in matched if s == split}):
                report.problems.append(
                    f"completion ({split}): {photo} is no {split} photo of the sources; ignored"
                )
    (out / "train.txt").write_text("\n".join(train_list) + "\n")
    data_yaml = {
        "path": str(out),
        "train": "train.txt",
        "val": "val/images",
        "names": dict(enumerate(CLASSES)),
    }
    (out / "data.yaml").write_text(yaml.safe_dump(data_yaml, sort_keys=False))
    # Each source's val photos alone: per-source scores (the model card's "per source" line).
    # Each source's train photos (once each) as an evaluation set: how well the model fits
    # what it was shown, which tells under-fitting (more training pays) from a val gap (more
    # or cleaner data pays).
    for kind, lists in (("val", val_lists), ("fit", train_lists)):
        for source, listed in lists.items():
            (out / f"{kind}_{source}.txt").write_text("\n".join(listed) + "\n")
            per_source = {**data_yaml, "val": f"{kind}_{source}.txt"}
            (out / f"data_{kind}_{source}.yaml").write_text(yaml.safe_dump(per_source, sort_keys=False))
    (out / "prepare_report.json").write_text(
        json.dumps(
            {
                "images": dict(report.images),
                "boxes": dict(report.boxes),
                "pseudo_boxes": dict(report.pseudo_boxes),
                "pseudo_dropped": dict(report.pseudo_dropped),
                "completed": dict(report.completed),
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
    parser.add_argument(
        "--complete",
        nargs=2,
        action="append",
        metavar=("SPLIT", "CSV"),
        default=[],
        help="apply the team's label completion CSV to a split (repeatable), e.g. "
        "--complete val datasets/label_completion/completion.csv",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    if args.out.exists() and any(args.out.iterdir()):
        print(f"error: {args.out} is not empty; pick a new folder", file=sys.stderr)
        return 1
    yolox = None if args.no_pseudo else (args.yolox or args.data / "weights" / "yolox_nano.onnx")
    completion: dict[str, dict[str, list[CompletionBox]]] = {}
    for split, path in args.complete:
        if split not in ("train", "val"):
            print(f"error: --complete takes train or val, not {split!r}", file=sys.stderr)
            return 1
        try:
            completion.setdefault(split, {}).update(read_completion(Path(path)))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    report = prepare(args.data, args.out, yolox, conf=args.conf, completion=completion)
    print(
        json.dumps(
            {
                "images": dict(report.images),
                "boxes": dict(report.boxes),
                "pseudo_boxes": dict(report.pseudo_boxes),
                "pseudo_dropped": dict(report.pseudo_dropped),
                "completed": dict(report.completed),
                "polygons": report.polygons,
                "problems": len(report.problems),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

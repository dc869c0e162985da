"""Where garbage recall is lost: the labelled piles a model misses, counted by cause and drawn.

Reads the recipe build (``first_model``: ``<build>/val/labels/garbage__*.txt``), runs the
model at score >= ``conf`` and, for labelled garbage boxes whose longer side is in
``band`` (a share of the photo's), counts the misses (no garbage box at IoU >= 0.5) by
what is there instead: nothing near, a garbage box of another extent (IoU > 0.1), or a box
of another class (IoU > 0.3). The figure shows the first photos with a miss: labels green,
garbage predictions red, other classes blue.

    python -m training.recipes.garbage_misses MODEL.onnx --build $RUNS/data --figure misses.jpg
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edge.geometry import box_iou_one_to_many as overlaps

if TYPE_CHECKING:
    from edge.detections import Detections

GREEN, RED, BLUE = (0, 200, 0), (0, 0, 255), (255, 128, 0)


def _label_boxes(label_file: Path, width: int, height: int, band: tuple[float, float]) -> list[list[float]]:
    boxes = []
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5 or parts[0] != "0":  # class 0 is garbage in the recipe's class list
            continue
        cx, cy, w, h = map(float, parts[1:])
        if band[0] <= max(w, h) < band[1]:
            boxes.append(
                [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
            )
    return boxes


def measure(
    model: Path, build: Path, band: tuple[float, float], conf: float = 0.25, figure: Path | None = None
) -> dict[str, object]:
    import cv2

    from edge.config import DetectorConfig
    from edge.detector import load_detector

    detector = load_detector(DetectorConfig(model=str(model), conf=conf, providers=["CPUExecutionProvider"]))
    causes = {"nothing_near": 0, "garbage_of_other_extent": 0, "other_class": 0}
    labelled, tiles = 0, list[np.ndarray]()
    for label_file in sorted((build / "val" / "labels").glob("garbage__*.txt")):
        image = cv2.imread(str(build / "val" / "images" / f"{label_file.stem}.jpg"))
        if image is None:
            raise FileNotFoundError(f"no photo for {label_file}")
        height, width = image.shape[:2]
        truth = _label_boxes(label_file, width, height, band)
        if not truth:
            continue
        labelled += len(truth)
        found = detector.detect(np.asarray(image, dtype=np.uint8))
        garbage = found.xyxy[found.class_name == "garbage"]
        others = found.xyxy[found.class_name != "garbage"]
        missed = [box for box in truth if not (len(garbage) and overlaps(box, garbage).max() >= 0.5)]
        for box in missed:
            if len(garbage) and overlaps(box, garbage).max() > 0.1:
                causes["garbage_of_other_extent"] += 1
            elif len(others) and overlaps(box, others).max() > 0.3:
                causes["other_class"] += 1
            else:
                causes["nothing_near"] += 1
        if missed and figure is not None and len(tiles) < 6:
            tiles.append(_draw(image, truth, found))
    if figure is not None and tiles:
        tiles += [np.zeros_like(tiles[0])] * (6 - len(tiles))
        cv2.imwrite(str(figure), np.vstack([np.hstack(tiles[:3]), np.hstack(tiles[3:])]))
    missed_total = sum(causes.values())
    return {"band": list(band), "conf": conf, "labelled": labelled, "missed": missed_total, "causes": causes}


def _draw(image: np.ndarray, truth: list[list[float]], found: Detections) -> np.ndarray:
    import cv2

    canvas = image.copy()
    for x1, y1, x2, y2 in truth:
        cv2.rectangle(canvas, (int(x1), int(y1)), (int(x2), int(y2)), GREEN, 3)
    for name, box in zip(found.class_name, found.xyxy, strict=True):
        colour = RED if name == "garbage" else BLUE
        cv2.rectangle(canvas, (int(box[0]), int(box[1])), (int(box[2]), int(box[3])), colour, 2)
    return np.asarray(cv2.resize(canvas, (480, 360)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Garbage boxes a model misses, by cause.")
    parser.add_argument("model", type=Path, help="ONNX detector with a 'garbage' class")
    parser.add_argument(
        "--build", type=Path, required=True, help="folder written by training.recipes.first_model"
    )
    parser.add_argument("--band", default="0.1,0.3", help="box side as a share of the photo: low,high")
    parser.add_argument("--conf", type=float, default=0.25)
    parser.add_argument("--figure", type=Path, help="write a 3x2 grid of photos with misses here")
    args = parser.parse_args(argv)
    low, high = (float(v) for v in args.band.split(","))
    print(json.dumps(measure(args.model, args.build, (low, high), args.conf, args.figure), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Truck recall on street-level photos unlike the vehicle set's overpass-camera views.

The vehicle set is elevated traffic cameras; patrol vehicles see trucks from the street.
``street_trucks.json`` lists the trucks found in the held-out garbage *val* photos
(street level, Chinese cities): candidates from YOLOX-nano at score >= 0.3, each checked
by eye (cars, vans, bins and a food cart that YOLOX called trucks were dropped). The list
is small, so the result is an anecdote with its sample size, not a metric.

    python -m training.recipes.truck_generalisation MODEL.onnx --data ../shared/data
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from edge.geometry import box_iou_one_to_many

TRUCKS = Path(__file__).with_name("street_trucks.json")


def measure(model: Path, data: Path, conf: float = 0.25, min_iou: float = 0.5) -> dict[str, object]:
    import cv2

    from edge.config import DetectorConfig
    from edge.detector import load_detector

    detector = load_detector(DetectorConfig(model=str(model), conf=conf, providers=["CPUExecutionProvider"]))
    rows: list[dict[str, object]] = []
    hits = 0
    for entry in json.loads(TRUCKS.read_text()):
        image = cv2.imread(str(data / entry["image"]))
        if image is None:
            raise FileNotFoundError(f"missing photo {data / entry['image']}")
        found = detector.detect(np.asarray(image, dtype=np.uint8))
        overlaps = box_iou_one_to_many(entry["box_xyxy"], found.xyxy) if len(found) else np.zeros(0)
        matched = [str(found.class_name[i]) for i in np.flatnonzero(overlaps >= min_iou)]
        rows.append({"image": entry["image"], "note": entry["note"], "matched_as": matched})
        hits += "truck" in matched
    return {"trucks": len(rows), "found_as_truck": hits, "conf": conf, "min_iou": min_iou, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Truck recall on street-level photos.")
    parser.add_argument("model", type=Path, help="ONNX detector with a 'truck' class")
    parser.add_argument("--data", type=Path, required=True, help="folder holding garbage/val/images")
    parser.add_argument("--conf", type=float, default=0.25)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.model, args.data, args.conf), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How well the box places a sign it drives past, against the van's own fix: real photos, the real detector.

    python -m bench.sign_placement [--model models/streetwatch-det/streetwatch-det.onnx] [--json]

A van at 5 m/s, a frame every 0.5 s, drives straight at each labelled shop sign of the shared
signboard validation photos (``../shared/data/signboards/val``; its largest sign, the photo's
other signs left in view). Each photo is zoomed about its centre as a pinhole camera would see the
sign come closer (size in the frame ∝ 1 / distance, from 40 m to 17.5 m in 10 frames). The detector
runs on every frame; the detection that overlaps the sign's expected box (IoU ≥ 0.3) gives its
height to ``edge.rules.placement``, as the rule engine does.

Two moments, as the box sends them: the first frame with an estimate (a `new` held with
``await_place_s``), and the last frame (the track's `end`). At each, the estimate's distance to
the sign is compared with the distance of the van's fix to it (what an event without
``object_position`` says): the printed ratio is their medians' ratio, lower is better. ``honest``
is the share of estimates whose error is within the ``accuracy_m`` they state (for a radius like a
GPS fix's, about two in three). Without the
shared photos it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edge.config import DetectorConfig
from edge.detector import load_detector
from edge.detector.onnx_detector import OnnxDetector
from edge.geometry import iou
from edge.location.geo import EARTH_RADIUS_M, distance_m
from edge.rules.placement import ApproachSamples
from streetwatch.events import ObjectPosition, Position

REPO = Path(__file__).resolve().parent.parent
SIGNS = REPO.parent / "shared" / "data" / "signboards" / "val"
MODEL = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"
SPEED_MPS, FRAME_S = 5.0, 0.5
#: The photo shows its sign as from this far; the approach runs from FIRST_DEPTH_M over FRAMES frames.
PHOTO_DEPTH_M, FIRST_DEPTH_M, FRAMES = 10.0, 40.0, 10
SIGN_NORTH_M = 100.0  # the sign's place on the van's straight route north
LAT0, LON0 = 10.7769, 106.7009
MIN_SCORE = 0.25  # the demo box's signboard threshold

Box = tuple[float, float, float, float]


def north(metres: float) -> tuple[float, float]:
    return LAT0 + math.degrees(metres / EARTH_RADIUS_M), LON0


@dataclass
class Moment:
    """Errors at one moment of the approaches: the estimate's and the van fix's, in metres."""

    placed: list[float] = field(default_factory=list)
    camera: list[float] = field(default_factory=list)
    honest: int = 0

    def add(self, place: ObjectPosition, camera_m: float) -> None:
        error = distance_m(place.lat, place.lon, *north(SIGN_NORTH_M))
        self.placed.append(error)
        self.camera.append(camera_m)
        self.honest += error <= place.accuracy_m

    def summary(self) -> dict[str, float | int | None]:
        if not self.placed:
            return {"n": 0, "median_m": None, "p90_m": None, "camera_median_m": None, "ratio": None}
        ordered = sorted(self.placed)
        median, camera = statistics.median(ordered), statistics.median(self.camera)
        return {
            "n": len(ordered),
            "median_m": round(median, 2),
            "p90_m": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 2),
            "camera_median_m": round(camera, 2),
            "ratio": round(median / camera, 3),
            "honest": round(self.honest / len(ordered), 3),
        }


def largest_sign(label_file: Path, width: int, height: int) -> Box | None:
    """The photo's largest labelled sign that the frame does not cut at the top or bottom."""
    best = None
    for line in label_file.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5:
            continue
        cx, cy, w, h = (float(v) for v in parts[1:])
        box = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
        if box[1] <= 2 or box[3] >= height - 2:
            continue
        if best is None or w * h > (best[2] - best[0]) * (best[3] - best[1]) / (width * height):
            best = box
    return best


def zoomed(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` as a pinhole camera sees it from ``1 / scale`` times as far: scaled about its centre."""
    h, w = image.shape[:2]
    cx, cy = w / 2, h / 2
    zoom = np.array([[scale, 0, cx * (1 - scale)], [0, scale, cy * (1 - scale)]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(image, zoom, (w, h), borderValue=(114, 114, 114)))


def approach(image: np.ndarray, sign: Box, detector: OnnxDetector) -> list[tuple[int, float]]:
    """(frame, height of the sign's box) for every frame of the approach in which it was found."""
    h, w = image.shape[:2]
    cx, cy = w / 2, h / 2
    heights = []
    for k in range(FRAMES):
        scale = PHOTO_DEPTH_M / (FIRST_DEPTH_M - k * SPEED_MPS * FRAME_S)
        frame = zoomed(image, scale)
        expected = [cx + scale * (sign[0] - cx), cy + scale * (sign[1] - cy),
                    cx + scale * (sign[2] - cx), cy + scale * (sign[3] - cy)]  # fmt: skip
        found = detector.detect(frame)
        best, best_iou = None, 0.3
        for box, score, name in zip(found.xyxy, found.confidence, found.class_name, strict=True):
            if name != "signboard" or score < MIN_SCORE:
                continue
            overlap = iou(box.tolist(), expected)
            if overlap >= best_iou:
                best, best_iou = box, overlap
        if best is not None:
            heights.append((k, float(best[3] - best[1])))
    return heights


def measure(signs: Path, model: Path) -> dict[str, object]:
    detector = load_detector(DetectorConfig(model=str(model), conf=0.1))
    first, last = Moment(), Moment()
    photos = unplaced = 0
    for path in sorted((signs / "images").glob("*.jpg")):
        image = cv2.imread(str(path))
        label = signs / "labels" / f"{path.stem}.txt"
        if image is None or not label.is_file():
            continue
        sign = largest_sign(label, image.shape[1], image.shape[0])
        if sign is None:
            continue
        photos += 1
        samples = ApproachSamples()
        estimated = None
        for k, height in approach(image, sign, detector):
            travelled = k * SPEED_MPS * FRAME_S
            lat, lon = north(SIGN_NORTH_M - FIRST_DEPTH_M + travelled)
            camera = Position(lat=lat, lon=lon, source="gpx")
            samples.observe((0.0, 10.0, 1.0, 10.0 + height), 100_000, camera)  # only the height counts
            place = samples.estimate()
            if place is not None:
                if estimated is None:
                    first.add(place, FIRST_DEPTH_M - travelled)
                estimated = (place, FIRST_DEPTH_M - travelled)
        if estimated is None:
            unplaced += 1
        else:
            last.add(*estimated)
    return {"photos": photos, "unplaced": unplaced, "first": first.summary(), "last": last.summary()}


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.sign_placement", description=summary)
    parser.add_argument("--signs", type=Path, default=SIGNS, help="signboard photos in YOLO layout")
    parser.add_argument("--model", type=Path, default=MODEL, help="the sign detector (ONNX)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    if not (args.signs / "labels").is_dir():
        print(f"no labelled signboard photos at {args.signs}: nothing to measure", file=sys.stderr)
        return 0
    result = measure(args.signs, args.model)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['photos']} signs approached from {FIRST_DEPTH_M:.0f} m, {result['unplaced']} never placed"
    )
    for name, title in (("first", "first estimate (a held 'new')"), ("last", "last frame (the 'end')")):
        s = result[name]
        assert isinstance(s, dict)
        if not s["n"]:
            print(f"{title}: no estimate")
            continue
        print(
            f"{title}: {s['n']} signs, error median {s['median_m']} m (p90 {s['p90_m']} m) against the van's "
            f"fix {s['camera_median_m']} m: ratio {s['ratio']}; within the stated accuracy {s['honest']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

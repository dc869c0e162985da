"""How well the box places what it drives at, against the van's own fix: real photos, the real detector.

    python -m bench.object_placement [--sets signboards garbage] [--limit N] [--json]

A van at 5 m/s, a frame every 0.5 s, drives past the largest labelled object of each shared
validation photo (``../shared/data/<set>/val``: shop signs; garbage piles and overflowing bins),
the photo's other objects left in view. Each photo is scaled as a pinhole camera would see the
object come closer (size in the frame ∝ 1 / distance, from 40 m to 17.5 m in 10 frames). The
detector runs on every frame; the detection of the set's classes that overlaps the object's
expected box (IoU ≥ 0.3) gives its box to ``edge.rules.placement``, as the rule engine does.

The route passes the object ``--across`` metres to its side (6 m by default: a shop front beside
a lane). Each frame is the photo scaled about the point the camera looks at, so the object
appears where a pinhole camera with a ``--hfov`` field of view (90° by default) would show it from
that depth and that offset. The side estimate is checked against the geometry the frames were
made with: what it measures is the real detector's boxes wandering from frame to frame, not a
real lens's distortion.

Two moments, as the box sends them: the first frame with an estimate (a `new` held with
``await_place_s``), and the last frame (the track's `end`). At each, the distance to the object
of the van's fix (what an event without ``object_position`` says), of the place on the path (a
box without a ``camera`` view) and of the place beside it (with one) are compared: the printed
ratio is the estimate's median error over the van fix's, lower is better. ``honest`` is the
share of estimates whose error is within the ``accuracy_m`` they state (for a radius like a GPS
fix's, about two in three). Without the shared photos it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from bench.case_precision import SHARED, load_photos
from demo.approach import axis_column, zoomed
from edge.config import DetectorConfig
from edge.detector import load_detector
from edge.detector.onnx_detector import OnnxDetector
from edge.geometry import iou
from edge.location.geo import distance_m
from edge.rules.placement import ApproachSamples, CameraView
from streetwatch.events import ObjectPosition, Position
from streetwatch.geo import moved

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"
#: Per photo set: the labelled classes driven at, and the detector classes that find them.
PLACED: dict[str, tuple[str, ...]] = {"signboards": ("signboard",), "garbage": ("garbage", "overflow")}
SPEED_MPS, FRAME_S = 5.0, 0.5
#: The photo shows its object as from this far; the approach runs from FIRST_DEPTH_M over FRAMES frames.
PHOTO_DEPTH_M, FIRST_DEPTH_M, FRAMES = 10.0, 40.0, 10
OBJECT_NORTH_M = 100.0  # the object is level with this point of the van's straight route north
HFOV_DEG = 90.0  # the simulated camera's horizontal field of view (a wide dash camera's)
ACROSS_M = 6.0  # how far to the right of the route the object stands
LAT0, LON0 = 10.7769, 106.7009
MIN_SCORE = 0.25  # the demo box's signboard and garbage threshold

Box = tuple[float, float, float, float]
WAYS = (("on_path", "placed on the path (no camera view)"), ("beside", "placed beside it (with the view)"))
MOMENTS = (("first", "first estimate (a held 'new')"), ("last", "last frame (the 'end')"))


def north(metres: float) -> tuple[float, float]:
    return moved(LAT0, LON0, 0.0, metres)


def place_of(across_m: float) -> tuple[float, float]:
    """Where the object is: level with ``OBJECT_NORTH_M``, ``across_m`` east (right) of the route."""
    return moved(*north(OBJECT_NORTH_M), across_m, 0.0)


@dataclass
class Moment:
    """Errors at one moment of the approaches: the estimate's and the van fix's, in metres."""

    placed: list[float] = field(default_factory=list)
    camera: list[float] = field(default_factory=list)
    honest: int = 0

    def add(self, place: ObjectPosition, camera: Position, truth: tuple[float, float]) -> None:
        error = distance_m(place.lat, place.lon, *truth)
        self.placed.append(error)
        self.camera.append(distance_m(camera.lat, camera.lon, *truth))
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


def largest(boxes: list[Box], height: int) -> Box | None:
    """The largest box that the frame does not cut at the top or bottom (its height is the object's)."""
    whole = [b for b in boxes if b[1] > 2 and b[3] < height - 2]
    return max(whole, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), default=None)


def approach(
    image: np.ndarray, target: Box, axis_x: float, classes: tuple[str, ...], detector: OnnxDetector
) -> list[tuple[int, Box]]:
    """(frame, the object's box) for every frame of the approach in which it was found."""
    h, w = image.shape[:2]
    cy = h / 2
    boxes: list[tuple[int, Box]] = []
    for k in range(FRAMES):
        scale = PHOTO_DEPTH_M / (FIRST_DEPTH_M - k * SPEED_MPS * FRAME_S)
        x1, y1, x2, y2 = target
        expected = [w / 2 + scale * (x1 - axis_x), cy + scale * (y1 - cy)]
        expected += [w / 2 + scale * (x2 - axis_x), cy + scale * (y2 - cy)]  # the object's box, zoomed
        found = detector.detect(zoomed(image, scale, axis_x))
        best, best_iou = None, 0.3
        for box, score, name in zip(found.xyxy, found.confidence, found.class_name, strict=True):
            if name not in classes or score < MIN_SCORE:
                continue
            overlap = iou(box.tolist(), expected)
            if overlap >= best_iou:
                best, best_iou = box, overlap
        if best is not None:
            x1, y1, x2, y2 = (float(v) for v in best)
            boxes.append((k, (x1, y1, x2, y2)))
    return boxes


@dataclass
class Placer:
    """One way of placing the approaches' objects, and its errors at both moments."""

    view: CameraView | None
    first: Moment = field(default_factory=Moment)
    last: Moment = field(default_factory=Moment)
    unplaced: int = 0

    def run(self, frames: list[tuple[int, Box]], size: tuple[int, int], truth: tuple[float, float]) -> None:
        samples = ApproachSamples(self.view)
        estimated: tuple[ObjectPosition, Position] | None = None
        for k, box in frames:
            travelled = k * SPEED_MPS * FRAME_S
            lat, lon = north(OBJECT_NORTH_M - FIRST_DEPTH_M + travelled)
            camera = Position(lat=lat, lon=lon, source="gpx")
            samples.observe(box, size, camera)
            place = samples.estimate()
            if place is not None:
                if estimated is None:
                    self.first.add(place, camera, truth)
                estimated = (place, camera)
        if estimated is None:
            self.unplaced += 1
        else:
            self.last.add(*estimated, truth)

    def summary(self) -> dict[str, object]:
        return {"unplaced": self.unplaced, "first": self.first.summary(), "last": self.last.summary()}


def measure_set(
    data: Path,
    name: str,
    detector: OnnxDetector,
    limit: int | None = None,
    hfov_deg: float = HFOV_DEG,
    across_m: float = ACROSS_M,
) -> dict[str, object]:
    view = CameraView(hfov_deg)
    on_path, beside = Placer(None), Placer(view)
    photos = 0
    classes = PLACED[name]
    truth = place_of(across_m)
    for photo in load_photos(data, [name], limit, street_trucks=False):
        image = cv2.imread(str(photo.path))
        if image is None:
            continue
        target = largest([label.box for label in photo.labels if label.class_name in classes], image.shape[0])
        if target is None:
            continue
        photos += 1
        height, width = image.shape[:2]
        axis_x = axis_column(width, (target[0] + target[2]) / 2, across_m, hfov_deg, PHOTO_DEPTH_M)
        frames = approach(image, target, axis_x, classes, detector)
        on_path.run(frames, (width, height), truth)
        beside.run(frames, (width, height), truth)
    return {
        "photos": photos,
        "hfov_deg": hfov_deg,
        "across_m": across_m,
        "on_path": on_path.summary(),
        "beside": beside.summary(),
    }


def main(argv: list[str] | None = None) -> int:
    summary = (__doc__ or "").split("\n")[0]
    parser = argparse.ArgumentParser(prog="python -m bench.object_placement", description=summary)
    parser.add_argument("--data", type=Path, default=SHARED, help="folder holding <set>/val (../shared/data)")
    parser.add_argument("--sets", nargs="+", choices=sorted(PLACED), default=["signboards", "garbage"])
    parser.add_argument("--model", type=Path, default=MODEL, help="the detector (ONNX)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many photos per set")
    parser.add_argument(
        "--hfov", type=float, default=HFOV_DEG, help="the simulated camera's field of view (°)"
    )
    parser.add_argument("--across", type=float, default=ACROSS_M, help="the object's offset to the route (m)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    missing = [name for name in args.sets if not (args.data / name / "val" / "labels").is_dir()]
    if missing:
        sets = ", ".join(missing)
        print(f"no labelled {sets} photos under {args.data}: nothing to measure", file=sys.stderr)
        return 0
    detector = load_detector(DetectorConfig(model=str(args.model), conf=0.1))
    result = {
        name: measure_set(args.data, name, detector, args.limit, args.hfov, args.across) for name in args.sets
    }
    if args.json:
        print(json.dumps(result))
        return 0
    for name, figures in result.items():
        print(
            f"{name}: {figures['photos']} objects approached from {FIRST_DEPTH_M:.0f} m, "
            f"{figures['across_m']:g} m right of the route (field of view {figures['hfov_deg']:g}°)"
        )
        for way, title in WAYS:
            placer = figures[way]
            assert isinstance(placer, dict)
            print(f"  {title}: {placer['unplaced']} never placed")
            for moment, when in MOMENTS:
                s = placer[moment]
                if not s["n"]:
                    print(f"    {when}: no estimate")
                    continue
                print(
                    f"    {when}: {s['n']} placed, error median {s['median_m']} m (p90 {s['p90_m']} m) "
                    f"against the van's fix {s['camera_median_m']} m: ratio {s['ratio']}; within the stated "
                    f"accuracy {s['honest']}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What keeping each truck's nearest view costs the evidence recorder in memory.

    python -m bench.nearest_view_memory [--config deploy/edge.demo.yaml] [--trucks 6] [--frames 48] [--json]

For the types a second stage judges (the truck load stage), the recorder keeps a track's nearest
view besides its best-scoring frame, until the track ends: up to one more downscaled frame per
open truck track. This runs the box's pipeline (``edge.pipeline.from_config``: the config's
tracker, rules, truck load stage and evidence settings) over the shipped demo frames, with a
scripted detector in place of the config's: ``--trucks`` trucks at a time coming nearer, each
box growing while its score falls (a far truck often scores higher than the same truck close
up), so every track's nearest view is another frame than its best. It runs twice, once as
configured and once without ``truck_load`` (no views kept: the baseline), and prints the peak
of the bytes the recorder holds in frames (an image shared by several tracks counted once) and
the ratio of the two. Memory is not noisy, so one run of each is enough; the ratio is at most 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.case_precision import CollectNew, NoPosition
from bench.tiled_cost import DEFAULT_CONFIG, FRAMES, DecodedFrames
from edge.config import ClassMapping, DeviceConfig, load_config
from edge.detections import Detections
from edge.evidence import EvidenceRecorder
from edge.evidence.recorder import _KeptFrame
from edge.interfaces import ModelInfo
from edge.pipeline import from_config
from streetwatch.events import ViolationType

#: Frames a truck stays in view: it comes nearer on each.
TRACK_FRAMES = 8


class ApproachingTrucks:
    """``trucks`` trucks in view at a time, in fixed lanes; each lasts :data:`TRACK_FRAMES` frames,
    its box growing from 80 to about 290 px wide while its score falls from 0.9 to 0.55; lanes
    start their trucks a frame apart, so tracks begin and end on different frames."""

    def __init__(self, trucks: int, width: int, height: int) -> None:
        self.info = ModelInfo(name="approaching", version="0", class_names=("truck",), input_size=(64, 64))
        self.trucks = trucks
        self.width, self.height = width, height
        self.frame = 0

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        boxes, scores = [], []
        for lane in range(self.trucks):
            age = (self.frame + lane) % (TRACK_FRAMES + 2)  # two empty frames end the track
            if age >= TRACK_FRAMES:
                continue
            side = 80 + 30 * age
            x = (lane + 0.5) * self.width / self.trucks
            y = self.height * 0.6
            boxes.append((x - side / 2, y - side / 3, x + side / 2, y + side / 3))
            scores.append(0.9 - 0.05 * age)
        self.frame += 1
        count = len(boxes)
        return Detections(
            xyxy=np.asarray(boxes, dtype=np.float32).reshape(count, 4),
            confidence=np.asarray(scores, dtype=np.float32),
            class_id=np.zeros(count, dtype=np.int64),
            class_name=np.full(count, "truck"),
        )


class MeasuredRecorder(EvidenceRecorder):
    """The recorder, noting after every change the bytes its kept frames hold (shared images once)."""

    peak_bytes = 0
    peak_frames = 0

    def _keep(self, frames: dict[int, _KeptFrame], key: int, kept: _KeptFrame) -> None:
        super()._keep(frames, key, kept)
        self._measure()

    def held(self) -> tuple[int, int]:
        """Bytes and frames the kept images hold right now (an image kept for several tracks once)."""
        images = {id(k.image): k.image for k in (*self._kept.values(), *self._views.values())}
        return sum(i.nbytes for i in images.values()), len(images)

    def _measure(self) -> None:
        held_bytes, frames = self.held()
        self.peak_bytes = max(self.peak_bytes, held_bytes)
        self.peak_frames = max(self.peak_frames, frames)


def bench_config(config: DeviceConfig, with_views: bool) -> DeviceConfig:
    """``config`` reduced to one detector raising ``unsealed_truck`` from ``truck``, with or without
    its truck load stage (the stage is what makes the rule engine offer nearest views)."""
    mapping = ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck, detector=0)
    truck_load = config.truck_load if with_views else None
    if truck_load is not None:
        # Every truck judged (none held as too far): the views are kept the same either way.
        truck_load = truck_load.model_copy(update={"min_side_px": 0})
    return config.model_copy(
        update={
            "detectors": config.detectors[:1],
            "fusion": None,
            "class_map": [mapping],
            "truck_load": truck_load,
        }
    )


def peak(config: DeviceConfig, images: Sequence[NDArray[np.uint8]], trucks: int) -> MeasuredRecorder:
    height, width = images[0].shape[:2]
    with tempfile.TemporaryDirectory(prefix="nearest-view-") as tmp:
        recorder = MeasuredRecorder(config.evidence.model_copy(update={"directory": tmp}))
        pipeline = from_config(
            config,
            detectors=[ApproachingTrucks(trucks, width, height)],
            sink=CollectNew(),
            evidence=recorder,
            locator=NoPosition(),
            source=DecodedFrames(images),
            log_interval_s=1e9,
        )
        pipeline.run()
    return recorder


def _read(path: Path, width: int, height: int) -> NDArray[np.uint8]:
    image = cv2.imread(str(path))
    if image is None:
        raise SystemExit(f"cannot read the demo frame {path}")
    return np.asarray(cv2.resize(image, (width, height)), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evidence recorder memory with and without nearest views.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="box config (default: the demo)")
    parser.add_argument("--trucks", type=int, default=6, help="trucks in view at a time (default 6)")
    parser.add_argument("--frames", type=int, default=48, help="demo frames (default 48)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if config.truck_load is None:
        parser.error(f"{args.config} has no truck_load: no nearest views are kept, nothing to measure")
    if args.trucks < 1:
        parser.error("--trucks must be at least 1")
    paths = sorted(FRAMES.glob("*.jpg"))
    first = cv2.imread(str(paths[0])) if paths else None
    if first is None:
        parser.error(f"no frames in {FRAMES}")
    # One frame size throughout, as from one camera: the first demo frame's.
    height, width = first.shape[:2]
    images = [_read(p, width, height) for p in paths]
    # Each frame its own array, as from a camera (a repeated array would be counted once).
    images = [images[i % len(images)].copy() for i in range(args.frames)]
    runs = {
        name: peak(bench_config(config, name == "views"), images, args.trucks)
        for name in ("baseline", "views")
    }
    mb = {name: round(r.peak_bytes / 2**20, 2) for name, r in runs.items()}
    held = {name: r.peak_frames for name, r in runs.items()}
    result = {
        "config": str(args.config),
        "frames": len(images),
        "frame_size": [width, height],
        "max_frame_width": config.evidence.max_frame_width,
        "trucks_in_view": args.trucks,
        "peak_mb": mb,
        "peak_frames_held": held,
        "views_vs_baseline": round(runs["views"].peak_bytes / max(1, runs["baseline"].peak_bytes), 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.trucks} approaching trucks at a time, {len(images)} frames of {width}x{height}:")
        print(f"  without nearest views: peak {mb['baseline']} MB in {held['baseline']} frames")
        print(f"  with nearest views:    peak {mb['views']} MB in {held['views']} frames")
        print(f"  views / baseline: {result['views_vs_baseline']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

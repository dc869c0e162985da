"""What tiled inference costs the edge pipeline: the same box config with and without ``tiles``.

    python -m bench.tiled_cost [--config deploy/edge.demo.yaml] [--detector 1] [--rows 2 --cols 2]
                               [--overlap 0.2] [--frames 64] [--reps 2] [--json]

Runs the whole pipeline (``edge.pipeline.from_config``: every detector, fusion, tracker, rules,
the truck load stage, evidence) over the shipped demo frames (``datasets/samples/replay``, in the
repo; decoded before timing), once as configured and once with ``tiles`` on detector
``--detector``, interleaved ``--reps`` times; the best time of each is kept (other work on the
machine only slows a run). Prints seconds per frame of both and their ratio (tiled / untiled):
with a 2x2 grid and the full frame the tiled detector runs 5 inferences per frame instead of 1,
so the ratio depends on how much of the frame's time that detector took.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.case_precision import T0, CollectNew, NoPosition
from edge.config import DeviceConfig, TilesConfig, load_config
from edge.evidence import EvidenceRecorder
from edge.frames import Frame
from edge.pipeline import from_config

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO / "deploy" / "edge.demo.yaml"
FRAMES = REPO / "datasets" / "samples" / "replay"


class DecodedFrames:
    """Frames decoded before timing, one second apart (a frame source)."""

    def __init__(self, images: Sequence[NDArray[np.uint8]]) -> None:
        self.name = "tiled-cost"
        self._images = images

    def __iter__(self) -> Iterator[Frame]:
        for i, image in enumerate(self._images):
            yield Frame(image=image, timestamp=T0 + timedelta(seconds=i), index=i, source=self.name)

    def close(self) -> None:
        pass


def tiled_config(config: DeviceConfig, detector: int, tiles: TilesConfig) -> DeviceConfig:
    """``config`` with ``tiles`` on detector ``detector``."""
    detectors = list(config.detectors)
    detectors[detector] = detectors[detector].model_copy(update={"tiles": tiles})
    return config.model_copy(update={"detectors": detectors})


def seconds_per_frame(config: DeviceConfig, images: Sequence[NDArray[np.uint8]]) -> float:
    """The pipeline's run over ``images`` (models loaded before), seconds per frame."""
    with tempfile.TemporaryDirectory(prefix="tiled-cost-") as tmp:
        evidence = EvidenceRecorder(config.evidence.model_copy(update={"directory": tmp}))
        pipeline = from_config(
            config,
            sink=CollectNew(),
            evidence=evidence,
            locator=NoPosition(),
            source=DecodedFrames(images),
            log_interval_s=1e9,
        )
        started = time.perf_counter()
        pipeline.run()
        return (time.perf_counter() - started) / len(images)


def interleaved(
    variants: dict[str, DeviceConfig], images: Sequence[NDArray[np.uint8]], reps: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per frame of each config, run in turn ``reps`` times, and the best of each (other
    work on the machine only slows a run)."""
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(reps):
        for name, variant in variants.items():
            runs[name].append(seconds_per_frame(variant, images))
    return runs, {name: min(times) for name, times in runs.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Edge pipeline time per frame with and without tiles.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="box config (default: the demo)")
    parser.add_argument("--detector", type=int, default=1, help="index of the detector to tile (default 1)")
    parser.add_argument("--rows", type=int, default=2)
    parser.add_argument("--cols", type=int, default=2)
    parser.add_argument("--overlap", type=float, default=0.2)
    parser.add_argument("--frames", type=int, default=64, help="demo frames per run (default 64)")
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions; best kept (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if not 0 <= args.detector < len(config.detectors):
        parser.error(f"--detector {args.detector}: the config has {len(config.detectors)} detector(s)")
    if config.detectors[args.detector].tiles is not None:
        parser.error(f"detector {args.detector} is tiled in {args.config} already; give the untiled config")
    tiles = TilesConfig(rows=args.rows, cols=args.cols, overlap=args.overlap)
    paths = sorted(FRAMES.glob("*.jpg"))[: args.frames]
    images = [np.asarray(cv2.imread(str(p)), dtype=np.uint8) for p in paths]
    if not images:
        parser.error(f"no frames in {FRAMES}")
    variants = {"untiled": config, "tiled": tiled_config(config, args.detector, tiles)}
    runs, best = interleaved(variants, images, args.reps)
    result = {
        "config": str(args.config),
        "detector": args.detector,
        "model": Path(config.detectors[args.detector].model).name,
        "tiles": tiles.model_dump(),
        "frames": len(images),
        "ms_per_frame": {name: round(1000 * t, 1) for name, t in best.items()},
        "runs_ms_per_frame": {name: [round(1000 * t, 1) for t in times] for name, times in runs.items()},
        "tiled_vs_untiled": round(best["tiled"] / best["untiled"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        grid = f"{tiles.rows}x{tiles.cols}"
        print(f"{result['model']} tiled {grid} (+ full frame), {len(images)} frames, best of {args.reps}:")
        ms = best["untiled"] * 1000, best["tiled"] * 1000
        print(f"  untiled {ms[0]:.1f} ms/frame, tiled {ms[1]:.1f} ms/frame")
        print(f"  tiled / untiled: {result['tiled_vs_untiled']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

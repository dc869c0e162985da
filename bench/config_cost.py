"""What a box config's extra detector passes cost the edge pipeline: it against one pass per detector.

    python -m bench.config_cost [--config deploy/edge.demo.yaml] [--baseline OTHER.yaml]
                                [--frames 64] [--reps 2] [--json]

Runs the whole pipeline (``edge.pipeline.from_config``: every detector, fusion, tracker, rules,
the truck load stage, evidence) over the shipped demo frames (``datasets/samples/replay``, in the
repo; decoded before timing), once with ``--config`` and once with the baseline, interleaved
``--reps`` times; the best time of each is kept (other work on the machine only slows a run).
The baseline is ``--baseline`` when given, else the same config with every detector's ``flip``
and ``tiles`` taken off: one inference per detector and frame. Prints seconds per frame of both
and their ratio (config / baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from bench.tiled_cost import DEFAULT_CONFIG, FRAMES, interleaved
from edge.config import DeviceConfig, load_config


def single_pass(config: DeviceConfig) -> DeviceConfig:
    """``config`` with no detector flipped or tiled."""
    detectors = [d.model_copy(update={"flip": None, "tiles": None}) for d in config.detectors]
    return config.model_copy(update={"detectors": detectors})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pipeline time per frame: a config against a baseline.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="box config (default: the demo)")
    parser.add_argument(
        "--baseline", type=Path, help="config to compare with (default: --config, one pass per detector)"
    )
    parser.add_argument("--frames", type=int, default=64, help="demo frames per run (default 64)")
    parser.add_argument("--reps", type=int, default=2, help="interleaved repetitions; best kept (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    baseline = load_config(args.baseline) if args.baseline else single_pass(config)
    if args.baseline is None and baseline == config:
        parser.error(f"{args.config} flips and tiles no detector; give --baseline to compare with")
    paths = sorted(FRAMES.glob("*.jpg"))[: args.frames]
    images = [np.asarray(cv2.imread(str(p)), dtype=np.uint8) for p in paths]
    if not images:
        parser.error(f"no frames in {FRAMES}")
    variants = {"baseline": baseline, "config": config}
    runs, best = interleaved(variants, images, args.reps)
    result = {
        "config": str(args.config),
        "baseline": str(args.baseline) if args.baseline else "the config, one pass per detector",
        "frames": len(images),
        "ms_per_frame": {name: round(1000 * t, 1) for name, t in best.items()},
        "runs_ms_per_frame": {name: [round(1000 * t, 1) for t in times] for name, times in runs.items()},
        "config_vs_baseline": round(best["config"] / best["baseline"], 2),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{args.config} against {result['baseline']}, {len(images)} frames, best of {args.reps}:")
        ms = 1000 * best["baseline"], 1000 * best["config"]
        print(f"  baseline {ms[0]:.1f} ms/frame, config {ms[1]:.1f} ms/frame")
        print(f"  config / baseline: {result['config_vs_baseline']}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""INT8 vs FP32 on this CPU: speed ratio and mAP50 of both, measured in the same run.

    python -m bench.int8 [--fp32 models/streetwatch-det/streetwatch-det.onnx] [--int8 FILE]
                         [--data DATA_YAML] [--runs 50]

Without ``--int8`` the FP32 model is quantised here (static INT8, head post-processing in
FP32, calibrated on training photos). Without ``--data`` the validation set is rebuilt
from ``../shared/data`` with the first model's recipe. Prints one JSON object; the target
is ``int8_vs_fp32_speed`` >= 1.6 with ``map50_loss_points`` <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
DEFAULT_FP32 = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"


def latency_ms(models: dict[str, Path], images: list[np.ndarray], runs: int) -> dict[str, float]:
    """Median latency per model; runs interleave the models so background load hits both alike."""
    import onnxruntime as ort

    sessions = {
        k: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for k, p in models.items()
    }
    names = {k: s.get_inputs()[0].name for k, s in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for key, session in sessions.items():  # warm-up
        for image in images[:3]:
            session.run(None, {names[key]: image})
    for i in range(runs):
        image = images[i % len(images)]
        for key, session in sessions.items():
            began = time.perf_counter()
            session.run(None, {names[key]: image})
            times[key].append((time.perf_counter() - began) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> int:
    import cv2

    from training.evaluate import evaluate
    from training.export import calibration_images, export_int8, letterbox

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fp32", type=Path, default=DEFAULT_FP32)
    parser.add_argument("--int8", type=Path, help="INT8 model (default: quantise --fp32 here)")
    parser.add_argument(
        "--data", type=Path, help="dataset yaml with a val split (default: rebuild from shared)"
    )
    parser.add_argument("--runs", type=int, default=50, help="timed inferences per model")
    parser.add_argument("--calib-count", type=int, default=200)
    args = parser.parse_args(argv)
    if not args.fp32.is_file():
        print(f"error: FP32 model not found: {args.fp32}", file=sys.stderr)
        return 1

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data_yaml = args.data
        if data_yaml is None:
            from training.recipes.first_model import prepare

            prepare(SHARED, work / "data", SHARED / "weights" / "yolox_nano.onnx")
            data_yaml = work / "data" / "data.yaml"
        int8 = args.int8
        if int8 is None:
            train_images = data_yaml.parent / "train" / "images"
            int8 = export_int8(
                args.fp32, work / "int8.onnx", calibration_images(train_images, args.calib_count)
            )
        models = {"fp32": args.fp32, "int8": int8}

        val_images = sorted((data_yaml.parent / "val" / "images").iterdir())[:20]
        import onnx

        size = int(onnx.load(str(args.fp32)).graph.input[0].type.tensor_type.shape.dim[2].dim_value)
        photos = [cv2.imread(str(p)) for p in val_images]
        tensors = [letterbox(photo, size) for photo in photos if photo is not None]
        speed = latency_ms(models, tensors, args.runs)
        maps = {k: evaluate(p, data_yaml, work / f"eval_{k}", imgsz=size) for k, p in models.items()}

    result = {
        "fp32_ms": round(speed["fp32"], 2),
        "int8_ms": round(speed["int8"], 2),
        "int8_vs_fp32_speed": round(speed["fp32"] / speed["int8"], 2),
        "fp32_map50": maps["fp32"].map50,
        "int8_map50": maps["int8"].map50,
        "map50_loss_points": round(100 * (maps["fp32"].map50 - maps["int8"].map50), 2),
        "fp32_size_mb": round(args.fp32.stat().st_size / 1e6, 2),
        "imgsz": size,
        "runs": args.runs,
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

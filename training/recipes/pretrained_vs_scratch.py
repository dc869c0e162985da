"""Measure what the converted COCO weights are worth: same data, same epochs, two starts.

Trains yolov5nu twice on one YOLO set (by default the small signboard set, so it runs
in minutes on a CPU): once from the converted COCO checkpoint, once from the bare
architecture yaml; evaluates both on the set's val split and writes ``result.json``.

    python -m training.recipes.pretrained_vs_scratch --data ../shared/data/signboards \\
        --coco ../shared/data/weights/yolov5n_coco_v6.1.pt --out /work/runs/pvs
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import yaml


def copy_set(source: Path, target: Path, names: list[str]) -> Path:
    """Copy a ``{train,val}/{images,labels}`` set (ultralytics writes caches beside the labels)."""
    for split in ("train", "val"):
        shutil.copytree(source / split, target / split, dirs_exist_ok=True)
    data_yaml = target / "data.yaml"
    data = {
        "path": str(target),
        "train": "train/images",
        "val": "val/images",
        "names": dict(enumerate(names)),
    }
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


def run(data: Path, coco: Path, out: Path, names: list[str], epochs: int, imgsz: int) -> dict[str, object]:
    from training.convert_yolov5 import convert
    from training.evaluate import evaluate
    from training.train import TrainConfig, train

    data_yaml = copy_set(data, out / "data", names)
    start = out / "coco_start.pt"
    report = convert(coco, start, names)
    result: dict[str, object] = {
        "data": str(data),
        "epochs": epochs,
        "imgsz": imgsz,
        "transferred_tensors": report.transferred_count,
    }
    for label, weights in (("coco", start), ("scratch", Path("yolov5nu.yaml"))):
        began = time.monotonic()
        config = TrainConfig(
            data=data_yaml, weights=weights, project=out, name=label, epochs=epochs, imgsz=imgsz, plots=False
        )
        run_dir = train(config)
        minutes = (time.monotonic() - began) / 60
        summary = evaluate(run_dir / "weights" / "last.pt", data_yaml, out / f"{label}_eval", imgsz=imgsz)
        result[label] = {
            "map50": summary.map50,
            "map50_95": summary.map50_95,
            "train_minutes": round(minutes, 1),
        }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Pretrained (converted COCO) vs scratch, same data and epochs."
    )
    parser.add_argument("--data", type=Path, required=True, help="YOLO set with train/ and val/")
    parser.add_argument("--coco", type=Path, required=True, help="original YOLOv5n v6.1 COCO checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--names", default="signboard", help="comma-separated class names of the set")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--imgsz", type=int, default=320)
    args = parser.parse_args(argv)
    result = run(args.data, args.coco, args.out, args.names.split(","), args.epochs, args.imgsz)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

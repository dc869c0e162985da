"""Grouped k-fold cross-validation of the load classifier's recipe over every labelled crop.

The val split holds only 7 open loads and 9 empty beds, so its per-class figures move by 0.1
per crop. Cross-validation scores every labelled crop once, by a model that never saw its scene
group, which gives the rare classes 27 and 35 crops each. It measures the recipe, not the
shipped file (each fold trains its own model).

    nice -n 10 python -m training.truck_load.crossval --data datasets/truck_load --crops work/crops \\
        --weights ../shared/data/weights/yolov5n_coco_v6.1.pt --folds 3 --out crossval.json
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.truck_load.data import load_crops
from training.truck_load.train import _read, evaluate, predict, train

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--crops", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--rare-repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="JSON report")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(2)
    crops = load_crops(args.data)
    images = {c.crop_id: _read(args.crops, c.crop_id) for c in crops}
    groups = sorted({c.group for c in crops})
    random.Random(7).shuffle(groups)
    fold_of = {g: i % args.folds for i, g in enumerate(groups)}
    probs = np.zeros((len(crops), 5), dtype=np.float32)
    for fold in range(args.folds):
        held = [i for i, c in enumerate(crops) if fold_of[c.group] == fold]
        kept = [c for c in crops if fold_of[c.group] != fold]
        log.info("fold %d: train %d, score %d", fold + 1, len(kept), len(held))
        model = train(kept, images, args.weights, epochs=args.epochs, rare_repeats=args.rare_repeats)
        probs[held] = predict(model, [images[crops[i].crop_id] for i in held])
    report = evaluate(probs, [c.label for c in crops])
    report.update({"folds": args.folds, "epochs": args.epochs, "rare_repeats": args.rare_repeats})
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: report[k] for k in ("per_class", "macro_accuracy", "accuracy")}, indent=1))


if __name__ == "__main__":
    main()

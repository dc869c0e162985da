"""Grouped k-fold cross-validation of the load classifier's recipe over every labelled crop.

The val split holds only 8 open loads and 13 empty beds, so its per-class figures move by 0.1
per crop. Cross-validation scores every labelled crop once, by a model that never saw its scene
group, which gives the rare classes all their crops (34 and 47). It measures the recipe, not the
shipped file (each fold trains its own model). Each fold's model answers twice, on the crop
alone and averaged with the crop's mirror image, so one run scores both ways of answering
(``mirror`` in the report); recipes are chosen on these figures, never on the val split that
scores the shipped model.

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
from training.truck_load.train import FROZEN_LAYERS, _read, evaluate, predict, train

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--crops", type=Path, required=True)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=14)
    parser.add_argument("--rare-repeats", type=int, default=3)
    parser.add_argument("--balanced", action="store_true", help="class-balanced sampling (see train)")
    parser.add_argument(
        "--frozen-layers", type=int, default=FROZEN_LAYERS, help="backbone layers kept as COCO's"
    )
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
    mirrored = np.zeros_like(probs)
    for fold in range(args.folds):
        held = [i for i, c in enumerate(crops) if fold_of[c.group] == fold]
        kept = [c for c in crops if fold_of[c.group] != fold]
        log.info("fold %d: train %d, score %d", fold + 1, len(kept), len(held))
        model = train(
            kept,
            images,
            args.weights,
            epochs=args.epochs,
            rare_repeats=args.rare_repeats,
            balanced=args.balanced,
            frozen_layers=args.frozen_layers,
        )
        held_images = [images[crops[i].crop_id] for i in held]
        probs[held] = predict(model, held_images)
        mirrored[held] = predict(model, held_images, mirror=True)
    truth = [c.label for c in crops]
    report = evaluate(probs, truth)
    report["mirror"] = evaluate(mirrored, truth)
    report["by_photos"] = {
        photos: {
            "crops": len(rows),
            "plain": evaluate(probs[rows], [truth[i] for i in rows])["per_class"],
            "mirror": evaluate(mirrored[rows], [truth[i] for i in rows])["per_class"],
        }
        for photos in sorted({c.photos for c in crops})
        for rows in [[i for i, c in enumerate(crops) if c.photos == photos]]
    }
    report.update(
        {
            "folds": args.folds,
            "epochs": args.epochs,
            "rare_repeats": args.rare_repeats,
            "balanced": args.balanced,
            "frozen_layers": args.frozen_layers,
            "crops": len(crops),
        }
    )
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(
        json.dumps(
            {
                "plain": {k: report[k] for k in ("per_class", "macro_accuracy", "accuracy")},
                "mirror": {k: report["mirror"][k] for k in ("macro_accuracy", "accuracy")},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()

"""Train the truck load classifier on the team's labelled crops and export it to ONNX.

A small network with a COCO start: the YOLOv5n v6.1 backbone (layers 0-9, through SPPF) moved
into torch by :mod:`training.convert_yolov5`, global average pooling and one linear layer. About
600 labelled trucks are far too few to learn vision from scratch; a backbone that already knows
vehicles from COCO only has to learn where the load is and what covers it.

Input: the truck's box plus ``CROP_MARGIN`` of context, letterboxed (centred, grey 114) to
``IMAGE_SIZE`` square, RGB, 0-1, the same conventions as the ultralytics detectors. Output:
softmax probabilities over :data:`training.truck_load.data.TRAINED_CLASSES`.

    nice -n 10 python -m training.truck_load.train --data datasets/truck_load \\
        --crops work/crops --weights ../shared/data/weights/yolov5n_coco_v6.1.pt --out models/truck-load

CPU only; about a minute per epoch on two busy cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.detector.letterbox import letterbox, to_tensor
from streetwatch.errors import DatasetError
from training.export import set_metadata
from training.truck_load.crops import CROP_MARGIN
from training.truck_load.data import (
    TRAINED_CLASSES,
    LabelledCrop,
    grouped_split,
    labels_hash,
    load_crops,
    write_split,
)
from training.truck_load.field_labels import read_field_sources

log = logging.getLogger(__name__)

IMAGE_SIZE = 128
MODEL_NAME = "truck-load"
#: Layers 0-9 of ultralytics' yolov5nu.yaml are the YOLOv5 v6 backbone (through SPPF).
BACKBONE_LAYERS = 10
#: The first layers (edges, textures) stay as COCO left them: fewer weights to fit on few
#: crops, and half the backward pass saved on a shared two-core machine.
FROZEN_LAYERS = 5


def build_model(weights: Path, classes: int, frozen_layers: int = FROZEN_LAYERS) -> Any:
    """COCO YOLOv5n backbone + global average pool + linear head, as one ``torch.nn.Module``."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from training.convert_yolov5 import read_yolov5_checkpoint, transfer

    tensors, _ = read_yolov5_checkpoint(weights)
    detector = DetectionModel("yolov5nu.yaml", nc=80, verbose=False)
    merged, report = transfer(tensors, detector.state_dict())
    detector.load_state_dict(merged)
    backbone_moved = [n for n in report.transferred if int(n.split(".")[1]) < BACKBONE_LAYERS]
    log.info("COCO start: %d backbone tensors moved (%s)", len(backbone_moved), report.summary())
    layers: Any = detector.model
    backbone = torch.nn.Sequential(*list(layers)[:BACKBONE_LAYERS])
    for layer in list(backbone)[:frozen_layers]:
        layer.requires_grad_(False)
    with torch.no_grad():
        width = backbone(torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)).shape[1]
    return torch.nn.Sequential(
        backbone,
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(width, classes),
    ).float()


def prepare(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """BGR crop -> (1, 3, S, S) float32 network input (the edge does exactly this)."""
    canvas, _ = letterbox(image, (IMAGE_SIZE, IMAGE_SIZE), center=True)
    return to_tensor(canvas, rgb=True, scale=1 / 255)


def _augment(image: npt.NDArray[np.uint8], rng: np.random.Generator) -> npt.NDArray[np.uint8]:
    # A tracker's box wobbles: cut a slightly smaller, shifted window; mirror; vary exposure.
    h, w = image.shape[:2]
    keep = rng.uniform(0.82, 1.0)
    cw, ch = max(2, round(w * keep)), max(2, round(h * rng.uniform(0.82, 1.0)))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = image[y0 : y0 + ch, x0 : x0 + cw]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    gain, bias = rng.uniform(0.75, 1.25), rng.uniform(-20, 20)
    out = np.clip(out.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # far trucks are blurred; teach the model that blur is not a class
        factor = rng.uniform(0.3, 0.7)
        small = cv2.resize(out, (max(1, round(cw * factor)), max(1, round(ch * factor))))
        out = cv2.resize(small, (cw, ch), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray(out)


def _read(crops_dir: Path, crop_id: str) -> npt.NDArray[np.uint8]:
    image: npt.NDArray[np.uint8] | None = cv2.imread(str(crops_dir / f"{crop_id}.jpg"))  # type: ignore[assignment]
    if image is None:
        raise DatasetError(
            f"cannot read crop {crop_id} in {crops_dir} (cut it with training.truck_load.crops)"
        )
    return image


def train(
    crops: Sequence[LabelledCrop],
    images: dict[str, npt.NDArray[np.uint8]],
    weights: Path,
    *,
    epochs: int,
    seed: int = 0,
    frozen_layers: int = FROZEN_LAYERS,
    rare_repeats: int = 1,
    balanced: bool = False,
) -> Any:
    """Fine-tune; crops of classes under a tenth of the set are seen ``rare_repeats`` times an epoch.

    ``balanced``: instead, each epoch draws as many crops as the set holds, every class equally
    often (with replacement, so a rare crop is seen several times, each augmented differently),
    and the loss is unweighted (the sampling already balances it).
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(weights, len(TRAINED_CLASSES), frozen_layers)
    labels = np.array([TRAINED_CLASSES.index(c.label) for c in crops])
    counts = np.bincount(labels, minlength=len(TRAINED_CLASSES)).astype(np.float64)
    rare = counts[labels] < 0.1 * len(labels)
    # Rare crops are repeated (each time differently augmented), and the loss weights count them so.
    pool = np.concatenate([np.arange(len(crops))] + [np.flatnonzero(rare)] * (rare_repeats - 1))
    counts = np.bincount(labels[pool], minlength=len(TRAINED_CLASSES)).astype(np.float64)
    # Balanced class weights: the target is macro accuracy, and "uncovered" is the rarest class.
    weight = torch.tensor(len(labels) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
    draw: npt.NDArray[np.float64] | None = None
    if balanced:
        pool = np.arange(len(crops))
        per_class = np.bincount(labels, minlength=len(TRAINED_CLASSES)).astype(np.float64)
        draw = 1.0 / per_class[labels]
        draw /= draw.sum()
        weight = torch.ones(len(TRAINED_CLASSES), dtype=torch.float32)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=0.05)
    head = list(model.parameters())[-2:]
    head_ids = {id(p) for p in head}
    body = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": 5e-4}, {"params": head, "lr": 3e-3}], weight_decay=5e-4
    )
    batch = 32
    steps = epochs * int(np.ceil(len(pool) / batch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[5e-4, 3e-3], total_steps=steps, pct_start=0.15
    )
    for epoch in range(epochs):
        model.train()
        for layer in list(model[0])[:frozen_layers]:
            layer.eval()  # frozen layers keep COCO's batch-norm statistics too
        if draw is not None:
            order = rng.choice(len(crops), size=len(pool), replace=True, p=draw)
        else:
            order = pool[rng.permutation(len(pool))]
        total, started = 0.0, time.monotonic()
        for start in range(0, len(order), batch):
            chosen = order[start : start + batch]
            x = np.concatenate([prepare(_augment(images[crops[i].crop_id], rng)) for i in chosen])
            logits = model(torch.from_numpy(x))
            loss = loss_fn(logits, torch.from_numpy(labels[chosen]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(chosen)
        log.info(
            "epoch %d/%d loss %.4f (%.0f s)",
            epoch + 1,
            epochs,
            total / len(pool),
            time.monotonic() - started,
        )
    return model.eval()


def predict(
    model: Any, images: Sequence[npt.NDArray[np.uint8]], mirror: bool = False
) -> npt.NDArray[np.float32]:
    """Class probabilities; ``mirror``: averaged with the mirror image's (what the export does)."""
    import torch

    out = []
    with torch.no_grad():
        for start in range(0, len(images), 64):
            x = torch.from_numpy(np.concatenate([prepare(im) for im in images[start : start + 64]]))
            probs = torch.softmax(model(x), dim=1)
            if mirror:
                probs = (probs + torch.softmax(model(torch.flip(x, dims=[3])), dim=1)) / 2
            out.append(probs.numpy())
    return np.concatenate(out).astype(np.float32)


def evaluate(probs: npt.NDArray[np.float32], truth: Sequence[str]) -> dict[str, Any]:
    """Per-class accuracy (recall), macro accuracy and the confusion matrix (rows: truth)."""
    n = len(TRAINED_CLASSES)
    matrix = np.zeros((n, n), dtype=int)
    for row, label in zip(probs.argmax(1), truth, strict=True):
        matrix[TRAINED_CLASSES.index(label), int(row)] += 1
    per_class = {
        name: {
            "n": int(matrix[i].sum()),
            "correct": int(matrix[i, i]),
            "accuracy": _ratio(matrix[i, i], matrix[i].sum()),
        }
        for i, name in enumerate(TRAINED_CLASSES)
    }
    scored = [v["accuracy"] for v in per_class.values() if v["n"]]
    return {
        "per_class": per_class,
        "macro_accuracy": round(float(np.mean(scored)), 4),
        "accuracy": _ratio(np.trace(matrix), matrix.sum()),
        "confusion": {"classes": list(TRAINED_CLASSES), "rows_truth_cols_predicted": matrix.tolist()},
    }


def _ratio(a: Any, b: Any) -> float:
    return round(float(a) / float(b), 4) if b else 0.0


def export_onnx(model: Any, out: Path, metadata: dict[str, str], mirror: bool = False) -> Path:
    """ONNX with softmax; ``mirror`` averages the crop's and its mirror image's answers inside the
    graph, so the box needs no change to use it."""
    import onnx
    import torch

    class WithSoftmax(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            probs = torch.softmax(self.inner(x), dim=1)
            if mirror:
                probs = (probs + torch.softmax(self.inner(torch.flip(x, dims=[3])), dim=1)) / 2
            return probs

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        WithSoftmax(model),
        (torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE),),
        str(out),
        input_names=["images"],
        output_names=["probs"],
        opset_version=17,
        dynamo=False,
    )
    proto = onnx.load(str(out))
    set_metadata(proto, metadata)
    onnx.save(proto, str(out))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="datasets/truck_load")
    parser.add_argument("--crops", type=Path, required=True, help="crops cut by training.truck_load.crops")
    parser.add_argument("--weights", type=Path, required=True, help="yolov5n_coco_v6.1.pt")
    parser.add_argument("--out", type=Path, required=True, help="model folder (models/truck-load)")
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument(
        "--frozen-layers", type=int, default=FROZEN_LAYERS, help="backbone layers kept as COCO's"
    )
    parser.add_argument(
        "--rare-repeats", type=int, default=1, help="times a rare class's crop is seen per epoch"
    )
    parser.add_argument(
        "--balanced", action="store_true", help="draw every class equally often (replaces --rare-repeats)"
    )
    parser.add_argument(
        "--mirror", action="store_true", help="average each answer with the mirror image's (in the ONNX)"
    )
    parser.add_argument(
        "--field", type=Path, action="append", default=[], help="a folder of training.truck_load.field_labels"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(2)
    field_crops, field_dirs = read_field_sources(args.field)  # reviewed cases: another source
    crops = load_crops(args.data) + field_crops
    split = grouped_split(crops)
    write_split(args.data / "split.csv", crops, split)
    images = {c.crop_id: _read(field_dirs.get(c.crop_id, args.crops), c.crop_id) for c in crops}
    train_set = [c for c in crops if split[c.crop_id] == "train"]
    val_set = [c for c in crops if split[c.crop_id] == "val"]
    log.info("train %s", dict(Counter(c.label for c in train_set)))
    log.info("val %s", dict(Counter(c.label for c in val_set)))
    model = train(
        train_set,
        images,
        args.weights,
        epochs=args.epochs,
        frozen_layers=args.frozen_layers,
        rare_repeats=args.rare_repeats,
        balanced=args.balanced,
    )
    probs = predict(model, [images[c.crop_id] for c in val_set], mirror=args.mirror)
    report = evaluate(probs, [c.label for c in val_set])
    report["val_predictions"] = [
        {"crop_id": c.crop_id, "truth": c.label, "probs": [round(float(p), 4) for p in row]}
        for c, row in zip(val_set, probs, strict=True)
    ]
    onnx_path = args.out / f"{MODEL_NAME}.onnx"
    metadata = {
        "streetwatch_model": MODEL_NAME,
        "version": args.version,
        "task": "classify",
        "names": repr(dict(enumerate(TRAINED_CLASSES))),
        "imgsz": repr([IMAGE_SIZE, IMAGE_SIZE]),
        "crop_margin": repr(CROP_MARGIN),
        "preprocess": "letterbox centred, pad 114, RGB, scale 1/255",
        "test_time": "mean of the crop and its mirror image" if args.mirror else "the crop",
        "data_hash": labels_hash(crops, split),
        "date": datetime.now(timezone.utc).isoformat(),
        "license": "AGPL-3.0 (YOLOv5n COCO start); labels: see models/truck-load/MODEL_CARD.md",
    }
    export_onnx(model, onnx_path, metadata, mirror=args.mirror)
    report["epochs"] = args.epochs
    report["frozen_layers"] = args.frozen_layers
    report["rare_repeats"] = args.rare_repeats
    report["balanced"] = args.balanced
    report["mirror"] = args.mirror
    report["train_counts"] = dict(Counter(c.label for c in train_set))
    report["data_hash"] = metadata["data_hash"]
    (args.out / "eval.json").write_text(json.dumps(report, indent=1) + "\n")
    print(
        json.dumps({k: report[k] for k in ("per_class", "macro_accuracy", "accuracy", "confusion")}, indent=1)
    )


if __name__ == "__main__":
    main()

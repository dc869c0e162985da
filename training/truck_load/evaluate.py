"""Score a shipped load classifier the way the box runs it, on the held-out crops.

Each val crop is cut from its source photo by :class:`edge.truck_load.LoadClassifier` (the
edge's own code and the ONNX file that ships), so the numbers hold for the box, not only for
the training script. Besides per-class and macro accuracy it reports what the box's
``min_score`` does: how many answers become ``unsure`` (a candidate for review) and how many
trucks of each class would raise a case, and what the model says about the ``unclear`` crops.
Crops found in other photo sets (``mined/``) are cut from ``--shared`` (default: the folder
holding ``--photos``), and the report scores them apart too (``by_photos``), besides the val
crops of the vehicle set's labelled boxes alone (``labelled_boxes``: the split every model
before the mined crops was scored on).

    python -m training.truck_load.evaluate --data datasets/truck_load \\
        --photos ../shared/data/vehicles --model models/truck-load/truck-load.onnx --json
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from edge.truck_load import LoadClassifier
from streetwatch.errors import DatasetError
from streetwatch.events import TruckLoad
from streetwatch.file_hash import sha256_file
from training.truck_load.agreement import read_labels
from training.truck_load.crops import CropRecord, read_manifest
from training.truck_load.data import TRAINED_CLASSES
from training.truck_load.split_hash import val_hash
from training.truck_load.train import evaluate

THRESHOLDS = (0.5, 0.6, 0.7, 0.8)


def _photo(
    photos: Path, record: CropRecord, cache: dict[str, npt.NDArray[np.uint8]]
) -> npt.NDArray[np.uint8]:
    if record.image not in cache:
        image: npt.NDArray[np.uint8] | None = cv2.imread(str(photos / record.image))  # type: ignore[assignment]
        if image is None:
            raise DatasetError(f"cannot read {photos / record.image}")
        cache.clear()  # crops are sorted by photo: one photo in memory is enough
        cache[record.image] = image
    return cache[record.image]


def run(data: Path, photos: Path, model: Path, shared: Path | None = None) -> dict[str, Any]:
    classifier = LoadClassifier(model, ["CPUExecutionProvider"])
    records = {
        r.crop_id: r for r in read_manifest(data / "manifest.csv") + read_manifest(data / "negatives.csv")
    }
    root = {crop_id: photos for crop_id in records}
    mined = data / "mined" / "manifest.csv"
    if mined.exists():
        for r in read_manifest(mined):
            records[r.crop_id] = r
            root[r.crop_id] = shared if shared is not None else photos.parent
    with (data / "split.csv").open(newline="") as handle:
        val = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    cache: dict[str, npt.NDArray[np.uint8]] = {}
    probs, truth, sets, labelled = [], [], [], []
    for row in sorted(val, key=lambda r: str(root[r["crop_id"]] / records[r["crop_id"]].image)):
        record = records[row["crop_id"]]
        verdict = classifier.classify(_photo(root[row["crop_id"]], record, cache), record.box)
        probs.append([verdict.probabilities[name] for name in TRAINED_CLASSES])
        truth.append(row["label"])
        sets.append(row.get("photos") or "vehicles")
        labelled.append(root[row["crop_id"]] == photos)
    matrix = np.asarray(probs, dtype=np.float32)
    report = evaluate(matrix, truth)
    report["model"] = classifier.label
    # Which file on which crops: the registry's gate compares two reports only when both match.
    report["model_sha256"] = sha256_file(model)
    report["eval_hash"] = val_hash(data / "split.csv")[0]
    report["labelled_boxes"] = _subset(matrix, truth, labelled)
    report["by_photos"] = {
        name: _subset(matrix, truth, [s == name for s in sets]) for name in sorted(set(sets))
    }
    report["thresholds"] = {str(t): _at_threshold(matrix, truth, t) for t in THRESHOLDS}
    final = read_labels(data / "labels_final.csv")
    unclear = [r for r in read_manifest(data / "manifest.csv") if final[r.crop_id] == "unclear"]
    answers: Counter[str] = Counter()
    for record in sorted(unclear, key=lambda r: r.image):
        verdict = classifier.classify(_photo(photos, record, cache), record.box)
        answers[verdict.load.value if verdict.score >= 0.6 else TruckLoad.unsure.value] += 1
    report["unclear_crops_at_0.6"] = dict(answers.most_common())
    return report


def _subset(probs: npt.NDArray[np.float32], truth: Sequence[str], keep: Sequence[bool]) -> dict[str, Any]:
    rows = [i for i, k in enumerate(keep) if k]
    part = evaluate(probs[rows], [truth[i] for i in rows])
    keys = ("per_class", "macro_accuracy", "accuracy", "confusion")
    return {"crops": len(rows), **{k: part[k] for k in keys}}


def _at_threshold(probs: npt.NDArray[np.float32], truth: Sequence[str], threshold: float) -> dict[str, Any]:
    """What the box would do at ``min_score = threshold``, per true class."""
    out: dict[str, Any] = {}
    best = probs.argmax(1)
    sure = probs.max(1) >= threshold
    raised = sure & (best == TRAINED_CLASSES.index("uncovered"))
    for name in TRAINED_CLASSES:
        rows = np.array([t == name for t in truth])
        n = int(rows.sum())
        out[name] = {
            "n": n,
            "raised": int((raised & rows).sum()),  # a plain case
            "unsure": int((~sure & rows).sum()),  # a candidate for review
            "silenced": int((sure & ~raised & rows).sum()),  # nothing leaves the box
            "sure_and_right": int((sure & rows & (best == TRAINED_CLASSES.index(name))).sum()),
        }
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument(
        "--photos", type=Path, required=True, help="the vehicle set: <photos>/{train,val}/images"
    )
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument(
        "--shared", type=Path, help="where mined/manifest.csv's photos are (default: --photos/..)"
    )
    parser.add_argument("--json", action="store_true", help="print the whole report as JSON")
    args = parser.parse_args(argv)
    report = run(args.data, args.photos, args.model, args.shared)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(
        f"{report['model']}: macro accuracy {report['macro_accuracy']:.3f}, accuracy {report['accuracy']:.3f}"
    )
    for name, row in report["per_class"].items():
        print(f"  {name:12s} {row['correct']:3d}/{row['n']:3d}  {row['accuracy']:.3f}")
    for name, part in [("labelled boxes", report["labelled_boxes"]), *report["by_photos"].items()]:
        print(f"  {name}: {part['crops']} crops, macro accuracy {part['macro_accuracy']:.3f}")


if __name__ == "__main__":
    main()

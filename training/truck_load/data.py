"""The truck load set as the classifier sees it: labelled crops, trained classes, a grouped split.

The protocol's seven labels become five trained classes:

* ``open_bed_uncovered`` and ``partly_covered`` -> ``uncovered``: both raise a case, and
  ``partly_covered`` has two crops in the whole set, too few to learn or to score on its own;
* ``covered``, ``open_bed_empty`` -> ``empty``, ``closed_body`` -> ``closed`` keep their meaning;
* ``not_a_truck`` plus the set's own car and bus boxes (``negatives.csv``, minus the ones a look
  showed to be trucks) -> ``not_a_truck``;
* ``unclear`` is neither trained on nor scored.

The split is drawn by scene group (``manifest.csv``), so one truck never sits in both splits;
groups are dealt in a seeded order to val until each class holds about a quarter of its crops.
Crops found later in other photos (``mined/``, :mod:`training.truck_load.mine`) never move the
vehicle set's crops: a mined crop in a scene group that already has a side takes that side, and
the new groups are dealt the same way among themselves. So a model trained before them is still
scored on crops it never saw.
"""

from __future__ import annotations

import csv
import hashlib
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from streetwatch.errors import DatasetError
from training.truck_load.agreement import read_labels
from training.truck_load.crops import read_manifest

#: What the classifier outputs, in output order (the ONNX ``names`` metadata says the same).
TRAINED_CLASSES = ("uncovered", "covered", "empty", "closed", "not_a_truck")

#: Protocol label -> trained class; labels missing here (``unclear``) are left out.
LABEL_TO_CLASS = {
    "open_bed_uncovered": "uncovered",
    "partly_covered": "uncovered",
    "covered": "covered",
    "open_bed_empty": "empty",
    "closed_body": "closed",
    "not_a_truck": "not_a_truck",
}

VAL_SHARE = 0.25
SPLIT_SEED = 14


@dataclass(frozen=True)
class LabelledCrop:
    crop_id: str
    label: str  # a trained class
    group: int
    source: str  # "team" (two passes) or "set" (the vehicle set's own car/bus label)
    photos: str = "vehicles"  # the photo set it was cut from (see mined/manifest.csv's source)
    mined: bool = False  # found by the detectors in unlabelled photos (mined/), not a labelled box


def load_crops(folder: Path) -> list[LabelledCrop]:
    """Every trainable crop of ``folder`` (``datasets/truck_load``), sorted by crop id."""
    groups = {r.crop_id: r.group for r in read_manifest(folder / "manifest.csv")}
    final = read_labels(folder / "labels_final.csv")
    crops = [
        LabelledCrop(crop_id, LABEL_TO_CLASS[label], groups[crop_id], "team")
        for crop_id, label in final.items()
        if label in LABEL_TO_CLASS
    ]
    missing = sorted(set(final) - set(groups))
    if missing:
        raise DatasetError(f"labels name crops the manifest does not have, e.g. {missing[:3]}")
    negatives_file = folder / "negatives.csv"
    if negatives_file.exists():
        excluded = set()
        excluded_file = folder / "negatives_excluded.csv"
        if excluded_file.exists():
            with excluded_file.open(newline="") as handle:
                excluded = {row["crop_id"] for row in csv.DictReader(handle)}
        crops += [
            LabelledCrop(r.crop_id, "not_a_truck", r.group, "set")
            for r in read_manifest(negatives_file)
            if r.crop_id not in excluded
        ]
    crops += load_mined(folder / "mined")
    return sorted(crops, key=lambda c: c.crop_id)


def load_mined(folder: Path) -> list[LabelledCrop]:
    """Trainable crops of ``mined/`` once its final labels exist (none before)."""
    if not (folder / "labels_final.csv").exists():
        return []
    records = {r.crop_id: r for r in read_manifest(folder / "manifest.csv")}
    with (folder / "manifest.csv").open(newline="") as handle:
        sources = {row["crop_id"]: row["source"] for row in csv.DictReader(handle)}
    final = read_labels(folder / "labels_final.csv")
    missing = sorted(set(final) - set(records))
    if missing:
        raise DatasetError(f"{folder}: labels name crops the manifest does not have, e.g. {missing[:3]}")
    return [
        LabelledCrop(crop_id, LABEL_TO_CLASS[label], records[crop_id].group, "team", sources[crop_id], True)
        for crop_id, label in final.items()
        if label in LABEL_TO_CLASS
    ]


def grouped_split(crops: Sequence[LabelledCrop], seed: int = SPLIT_SEED) -> dict[str, str]:
    """``crop_id -> "train" | "val"``; every crop of a group lands in the same split.

    The vehicle set's crops are split first, alone, so mined crops never move them; a mined crop
    follows its group's side, and mined crops of new groups are split among themselves.
    """
    split = _deal(crops=[c for c in crops if not c.mined], seed=seed)
    side = {c.group: split[c.crop_id] for c in crops if not c.mined}
    new = []
    for c in crops:
        if c.mined and c.group in side:
            split[c.crop_id] = side[c.group]
        elif c.mined:
            new.append(c)
    split.update(_deal(new, seed))
    return split


def _deal(crops: Sequence[LabelledCrop], seed: int) -> dict[str, str]:
    by_group: dict[int, list[LabelledCrop]] = {}
    for c in crops:
        by_group.setdefault(c.group, []).append(c)
    order = sorted(by_group)
    random.Random(seed).shuffle(order)
    totals = Counter(c.label for c in crops)
    in_val: Counter[str] = Counter()
    split: dict[str, str] = {}
    for group in order:
        members = by_group[group]
        counts = Counter(c.label for c in members)
        wanted = any(in_val[k] < VAL_SHARE * totals[k] for k in counts)
        too_many = any(in_val[k] + n > (VAL_SHARE + 0.12) * totals[k] for k, n in counts.items())
        to_val = wanted and not too_many
        if to_val:
            in_val.update(counts)
        for c in members:
            split[c.crop_id] = "val" if to_val else "train"
    return split


def write_split(path: Path, crops: Sequence[LabelledCrop], split: dict[str, str]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("crop_id", "label", "group", "source", "split", "photos"))
        for c in crops:
            writer.writerow((c.crop_id, c.label, c.group, c.source, split[c.crop_id], c.photos))


def labels_hash(crops: Sequence[LabelledCrop], split: dict[str, str]) -> str:
    """SHA-256 over every (crop, class, split): names the exact labels a model was trained on."""
    digest = hashlib.sha256()
    for c in sorted(crops, key=lambda c: c.crop_id):
        digest.update(f"{c.crop_id},{c.label},{split[c.crop_id]}\n".encode())
    return digest.hexdigest()

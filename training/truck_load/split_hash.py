"""The identity of a load classifier's held-out crops: two evaluations are comparable exactly when
this hash of the split they scored matches (the registry's ``eval_hash`` of a classifier)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path


def val_hash(split_csv: Path) -> tuple[str, int]:
    """SHA-256 over the sorted ``crop_id,label`` rows of the val split, and how many there are."""
    with split_csv.open(newline="") as handle:
        rows = sorted((r["crop_id"], r["label"]) for r in csv.DictReader(handle) if r["split"] == "val")
    digest = hashlib.sha256("".join(f"{c},{label}\n" for c, label in rows).encode())
    return digest.hexdigest(), len(rows)

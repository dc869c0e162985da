"""Register a truck load classifier in ``models/registry.json``, so the fleet can sign and deploy it.

A classifier has no mAP: its registry entry carries a classifier's metrics (``task:
classify``, macro and overall accuracy, accuracy per class, the crops scored) from the
held-out evaluation through the edge's own code (``python -m training.truck_load.evaluate
--json``), and ``eval_hash`` names the crops scored: SHA-256 over the val split's
``crop_id,label`` rows (:func:`val_hash`), so two versions' figures are comparable exactly when
their hashes match. Name, version and the training labels' hash come from the ONNX metadata.

    python -m training.truck_load.evaluate --data datasets/truck_load --photos ../shared/data/vehicles \\
        --model models/truck-load/truck-load-1.3.0.onnx --json > models/truck-load/eval_edge_1.3.0.json
    python -m training.truck_load.register models/truck-load/truck-load-1.3.0.onnx \\
        --eval models/truck-load/eval_edge_1.3.0.json [--current]
    streetwatch model sign truck-load 1.3.0 --key /secure/fleet-key/fleet-release.key
    streetwatch fleet deploy truck-load 1.3.0 --group patrol-north --wait

Which version runs on the boxes (``--current``) is decided on ``bench/case_precision.py``, not
on these figures alone (the model card says why); nothing is marked current by default.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx

from streetwatch.errors import ConfigError, StreetWatchError
from streetwatch.file_hash import sha256_file
from training.registry import ModelEntry, Registry

REPO = Path(__file__).resolve().parents[2]
TASK = "classify"


def val_hash(split_csv: Path) -> tuple[str, int]:
    """SHA-256 over the sorted ``crop_id,label`` rows of the val split, and how many there are."""
    with split_csv.open(newline="") as handle:
        rows = sorted((r["crop_id"], r["label"]) for r in csv.DictReader(handle) if r["split"] == "val")
    digest = hashlib.sha256("".join(f"{c},{label}\n" for c, label in rows).encode())
    return digest.hexdigest(), len(rows)


def classifier_metrics(report: dict[str, Any], imgsz: int) -> dict[str, Any]:
    """The registry's metrics of a classifier, from an evaluation report."""
    per_class = report["per_class"]
    return {
        "task": TASK,
        "macro_accuracy": float(report["macro_accuracy"]),
        "accuracy": float(report["accuracy"]),
        "per_class_accuracy": {name: float(row["accuracy"]) for name, row in per_class.items()},
        "crops": sum(int(row["n"]) for row in per_class.values()),
        "imgsz": imgsz,
    }


def entry_for(
    model: Path, report_path: Path, split_csv: Path, registry: Registry, notes: str = ""
) -> ModelEntry:
    """The registry entry of ``model`` evaluated in ``report_path``; ConfigError says what does not fit."""
    try:
        meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {model} or {report_path}: {exc}") from exc
    name, version = meta.get("streetwatch_model"), meta.get("version")
    if meta.get("task") != TASK or not name or not version:
        raise ConfigError(f"{model} is not a load classifier (metadata task, streetwatch_model, version)")
    if report.get("model") != f"{name} {version}":
        raise ConfigError(f"{report_path} evaluated {report.get('model')!r}, not {name} {version}")
    eval_hash, val_crops = val_hash(split_csv)
    metrics = classifier_metrics(report, int(json.loads(meta.get("imgsz", "[0]"))[0]))
    if metrics["crops"] != val_crops:
        raise ConfigError(
            f"{report_path} scored {metrics['crops']} crops, the val split of {split_csv} has {val_crops}: "
            "evaluate the model on the current split"
        )
    current = registry.current_entry(name)
    return ModelEntry(
        name=name,
        version=version,
        file=registry.file_entry(model),
        sha256=sha256_file(model),
        data_hash=meta.get("data_hash", ""),
        eval_hash=eval_hash,
        metrics=metrics,
        parent=current.version if current else None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes=notes or f"held-out evaluation: {report_path.name}",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the exported ONNX load classifier")
    parser.add_argument("--eval", type=Path, required=True, help="its evaluate --json report")
    parser.add_argument("--data", type=Path, default=REPO / "datasets" / "truck_load", help="holds split.csv")
    parser.add_argument("--registry", type=Path, default=REPO / "models" / "registry.json")
    parser.add_argument("--current", action="store_true", help="make it the version boxes run")
    parser.add_argument("--notes", default="", help="what changed, for the registry")
    args = parser.parse_args(argv)
    try:
        if not args.registry.is_file():
            raise ConfigError(f"model registry {args.registry} does not exist")
        registry = Registry(args.registry)
        entry = entry_for(args.model, args.eval, args.data / "split.csv", registry, args.notes)
        if registry.get(entry.name, entry.version) is not None:
            raise ConfigError(f"{entry.name} {entry.version} is already registered; export a new version")
        registry.models.append(entry)
        if args.current:
            registry.current[entry.name] = entry.version
        registry.save()
    except StreetWatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    current = registry.current_entry(entry.name)
    print(
        f"registered {entry.name} {entry.version}: macro accuracy {entry.metrics['macro_accuracy']:.3f} on "
        f"{entry.metrics['crops']} crops (eval {entry.eval_hash[:12]}); current: "
        f"{current.version if current else 'none'}"
    )
    if current is not None and current is not entry:
        before = current.metrics.get("macro_accuracy")
        same = current.eval_hash == entry.eval_hash and isinstance(before, float)
        print(
            f"  the current {current.version} scores {before:.3f} on the same crops"
            if same
            else f"  the current {current.version} was scored on other crops: evaluate it on this split"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

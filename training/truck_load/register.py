"""Register a truck load classifier in ``models/registry.json``, and make it current through the gate.

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

``--current`` (or ``streetwatch model promote`` with the same arguments) makes it the version boxes
run only if :mod:`training.classifier_gate` accepts it against the current one: not worse on the
same crops, class by class. A version registered earlier without ``--current`` is promoted the same
way, with a fresh evaluation of its file. When the val split itself changed (field labels added),
``--baseline-eval`` gives the current model's file evaluated on the new split, and the gate compares
against that. The gate is necessary, not sufficient: which version should run is also a question
for ``bench/case_precision.py`` (the model card says why); nothing is made current by default.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import onnx

from streetwatch.errors import ConfigError, StreetWatchError
from streetwatch.file_hash import sha256_file
from training.classifier_gate import DEFAULT_CLASS_TOLERANCE, TASK, compare_classifier
from training.registry import GateDecision, ModelEntry, Registry, baseline_record
from training.truck_load.split_hash import val_hash

__all__ = ["classifier_metrics", "entry_for", "main", "promote_classifier", "val_hash"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SPLIT = REPO / "datasets" / "truck_load" / "split.csv"
REPORT_KEYS = frozenset({"model", "per_class", "macro_accuracy", "accuracy"})


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


def read_report(path: Path) -> dict[str, Any]:
    """An ``evaluate --json`` report; ConfigError when the file is not one."""
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the evaluation report {path}: {exc}") from exc
    if not isinstance(report, dict) or not set(report) >= REPORT_KEYS:
        raise ConfigError(f"{path} is not a report of python -m training.truck_load.evaluate --json")
    return report


def _check_report(report: dict[str, Any], path: Path, model_label: str, sha256: str, eval_hash: str) -> None:
    """``report`` must be of this very file on this val split. Reports written before they carried
    ``model_sha256`` and ``eval_hash`` are checked by the model's name and the crop count only."""
    if report.get("model") != model_label:
        raise ConfigError(f"{path} evaluated {report.get('model')!r}, not {model_label}")
    measured = report.get("model_sha256")
    if measured is not None and measured != sha256:
        raise ConfigError(
            f"{path} measured a file with sha256 {str(measured)[:12]}, not this one ({sha256[:12]}): "
            "evaluate this very file"
        )
    scored = report.get("eval_hash")
    if scored is not None and scored != eval_hash:
        raise ConfigError(
            f"{path} scored other crops (eval hash {str(scored)[:12]}) than the val split's "
            f"({eval_hash[:12]}): evaluate the model on the current split"
        )


def entry_for(
    model: Path, report_path: Path, split_csv: Path, registry: Registry, notes: str = ""
) -> ModelEntry:
    """The registry entry of ``model`` evaluated in ``report_path``; ConfigError says what does not fit."""
    try:
        meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {model}: {exc}") from exc
    report = read_report(report_path)
    name, version = meta.get("streetwatch_model"), meta.get("version")
    if meta.get("task") != TASK or not name or not version:
        raise ConfigError(f"{model} is not a load classifier (metadata task, streetwatch_model, version)")
    sha256 = sha256_file(model)
    eval_hash, val_crops = val_hash(split_csv)
    _check_report(report, report_path, f"{name} {version}", sha256, eval_hash)
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
        sha256=sha256,
        data_hash=meta.get("data_hash", ""),
        eval_hash=eval_hash,
        metrics=metrics,
        parent=current.version if current else None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        notes=notes or f"held-out evaluation: {report_path.name}",
    )


def rebaselined(current: ModelEntry, baseline_path: Path, eval_hash: str) -> ModelEntry:
    """``current`` with the metrics of a fresh evaluation of its very file on the candidate's crops."""
    report = read_report(baseline_path)
    if "model_sha256" not in report or "eval_hash" not in report:
        raise ConfigError(
            f"{baseline_path} does not say which file and which crops it measured (model_sha256, "
            "eval_hash): evaluate the current model again with python -m training.truck_load.evaluate"
        )
    _check_report(report, baseline_path, f"{current.name} {current.version}", current.sha256, eval_hash)
    return replace(
        current, eval_hash=eval_hash, metrics=classifier_metrics(report, int(current.metrics.get("imgsz", 0)))
    )


def promote_classifier(
    registry: Registry,
    entry: ModelEntry,
    baseline: Path | None = None,
    class_tolerance: float = DEFAULT_CLASS_TOLERANCE,
) -> GateDecision:
    """Make ``entry`` the current version if the gate accepts it; register it if it is new; save.

    A version registered before (same file) takes the fresh evaluation ``entry`` carries.
    """
    known = registry.get(entry.name, entry.version)
    if known is not None and known.sha256 != entry.sha256:
        raise ConfigError(
            f"{entry.name} {entry.version} is registered with another file ({known.sha256[:12]}); "
            "export the candidate under a new version"
        )
    current = registry.current_entry(entry.name)
    if current is not None and current.version == entry.version:
        raise ConfigError(f"{entry.name} {entry.version} is already the current version")
    reference, gate = current, dict[str, Any]()
    if baseline is not None:
        if current is None:
            raise ConfigError(f"there is no current {entry.name} to re-baseline; promote without a baseline")
        reference = rebaselined(current, baseline, entry.eval_hash)
        gate = baseline_record(current, reference)
    decision = compare_classifier(entry.metrics, entry.eval_hash, reference, class_tolerance=class_tolerance)
    if gate:
        decision.reasons.insert(0, f"gate re-baselined on {gate['baseline']}")
    if not decision.accepted:
        return decision
    if class_tolerance != DEFAULT_CLASS_TOLERANCE:
        gate["class_tolerance"] = class_tolerance  # the trade the trainer accepted, on the record
    promoted = replace(entry, gate=gate)
    if known is None:
        registry.models.append(promoted)
    else:  # keep where it came from; take the figures it was promoted on
        promoted = replace(promoted, parent=known.parent, created=known.created, notes=known.notes)
        registry.models[registry.models.index(known)] = promoted
    registry.current[entry.name] = entry.version
    registry.save()
    return decision


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", type=Path, help="the exported ONNX load classifier")
    parser.add_argument("--eval", type=Path, required=True, help="its evaluate --json report")
    parser.add_argument("--data", type=Path, default=REPO / "datasets" / "truck_load", help="holds split.csv")
    parser.add_argument("--registry", type=Path, default=REPO / "models" / "registry.json")
    parser.add_argument(
        "--current",
        action="store_true",
        help="make it the version boxes run, if the gate accepts it (exit status 1 when refused)",
    )
    parser.add_argument(
        "--class-tolerance",
        type=float,
        default=DEFAULT_CLASS_TOLERANCE,
        help="allowed drop of a class's accuracy (recorded in the entry when not the default)",
    )
    parser.add_argument(
        "--baseline-eval",
        type=Path,
        metavar="REPORT",
        help="with --current, after the val split changed: the CURRENT model's file evaluated on it",
    )
    parser.add_argument("--notes", default="", help="what changed, for the registry")
    args = parser.parse_args(argv)
    try:
        if not args.registry.is_file():
            raise ConfigError(f"model registry {args.registry} does not exist")
        if args.baseline_eval is not None and not args.current:
            raise ConfigError("--baseline-eval re-baselines the gate of --current; give both")
        registry = Registry(args.registry)
        entry = entry_for(args.model, args.eval, args.data / "split.csv", registry, args.notes)
        if args.current:
            decision = promote_classifier(registry, entry, args.baseline_eval, args.class_tolerance)
            print(f"{entry.name} {entry.version}: {decision.explain()}")
            if not decision.accepted:
                return 1
        else:
            if registry.get(entry.name, entry.version) is not None:
                raise ConfigError(
                    f"{entry.name} {entry.version} is already registered; export a new version, or "
                    "make it current with --current"
                )
            registry.models.append(entry)
            registry.save()
    except StreetWatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_registered(registry, entry)
    return 0


def _print_registered(registry: Registry, entry: ModelEntry) -> None:
    current = registry.current_entry(entry.name)
    print(
        f"registered {entry.name} {entry.version}: macro accuracy {entry.metrics['macro_accuracy']:.3f} on "
        f"{entry.metrics['crops']} crops (eval {entry.eval_hash[:12]}); current: "
        f"{current.version if current else 'none'}"
    )
    if current is not None and current.version != entry.version:
        before = current.metrics.get("macro_accuracy")
        same = current.eval_hash == entry.eval_hash and isinstance(before, float)
        print(
            f"  the current {current.version} scores {before:.3f} on the same crops"
            if same
            else f"  the current {current.version} was scored on other crops: evaluate it on this split"
        )


if __name__ == "__main__":
    raise SystemExit(main())

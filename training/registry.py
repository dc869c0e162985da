"""The model registry (``models/registry.json``) and its promotion gate.

The registry lists every model version that was ever promoted, with what is needed to
trust and trace it: file, sha256, metrics on the fixed evaluation set (and that set's
content hash), training-data hash and parent version. For each model name one version
is ``current``: the one the edge uses. Detectors' metrics are mAP figures; a classifier's
(the truck load model, ``metrics.task: classify``) are accuracies on held-out crops, written by
``python -m training.truck_load.register`` and judged by :mod:`training.classifier_gate`.

A candidate replaces the current model only if it is not worse on the same evaluation
set: mAP50 and mAP50-95 may not drop, and no class's AP50 may drop by more than
``class_tolerance``. A refusal lists every reason, so the trainer knows what to fix.

When the evaluation set itself is corrected (labels the sources left out added), its hash
changes and the stored metrics no longer measure the same thing. The gate is then re-baselined
explicitly: the current model's very file is evaluated on the corrected set, and the candidate
is compared against that evaluation instead of the stored metrics. The candidate's entry records
the new eval hash and, under ``gate``, that (and on what) the baseline was re-measured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from streetwatch.errors import ConfigError
from streetwatch.file_hash import sha256_file
from training.evaluate import EvalSummary

#: Registry format version, bumped on incompatible changes.
REGISTRY_FORMAT = 1


@dataclass
class ModelEntry:
    name: str
    version: str
    file: str
    sha256: str
    data_hash: str
    eval_hash: str
    metrics: dict[str, Any]
    parent: str | None = None
    created: str = ""
    notes: str = ""
    # Set when this entry passed a re-baselined gate (see ``Registry.promote``'s ``baseline``);
    # empty, and left out of the file, otherwise, so registries written before it read the same.
    gate: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateDecision:
    accepted: bool
    reasons: list[str] = field(default_factory=list)

    def explain(self) -> str:
        verdict = "accepted" if self.accepted else "refused"
        return f"{verdict}: " + ("; ".join(self.reasons) if self.reasons else "no current model to beat")


def metrics_from_summary(summary: EvalSummary) -> dict[str, Any]:
    return {
        "map50": summary.map50,
        "map50_95": summary.map50_95,
        "precision": summary.precision,
        "recall": summary.recall,
        "per_class_ap50": {name: m.ap50 for name, m in summary.per_class.items()},
        "imgsz": summary.imgsz,
        "ms_per_image": summary.ms_per_image,
    }


def metric_label(metrics: dict[str, Any]) -> str:
    """The headline figure of an entry: a detector's mAP50, a classifier's macro accuracy."""
    if metrics.get("task") == "classify":
        return f"macro acc {float(metrics.get('macro_accuracy', 0.0)):.3f}"
    return f"mAP50 {float(metrics.get('map50', 0.0)):.3f}"


def compare(
    candidate: dict[str, Any],
    candidate_eval_hash: str,
    current: ModelEntry | None,
    tolerance: float = 0.0,
    class_tolerance: float = 0.02,
) -> GateDecision:
    """Decide whether ``candidate`` metrics may replace ``current``."""
    if current is None:
        return GateDecision(True, [])
    if current.metrics.get("task") == "classify":  # its entries come from training.truck_load.register
        return GateDecision(
            False,
            [
                f"{current.name} is a classifier (macro accuracy, no mAP); this gate compares detectors: "
                "a classifier is promoted with its training.truck_load.evaluate --json report"
            ],
        )
    reasons: list[str] = []
    if candidate_eval_hash != current.eval_hash:
        return GateDecision(
            False,
            [
                f"evaluated on a different set (eval hash {candidate_eval_hash[:12]} vs the current model's "
                f"{current.eval_hash[:12]}); evaluate the candidate on the fixed evaluation set, or, if that "
                "set's labels were corrected, re-baseline with the current model evaluated on it "
                "(--baseline-eval)"
            ],
        )
    accepted = True
    for key in ("map50", "map50_95"):
        new, old = float(candidate[key]), float(current.metrics[key])
        if new < old - tolerance:
            accepted = False
            reasons.append(f"{key} {new:.4f} is below the current {current.version}'s {old:.4f}")
        else:
            reasons.append(f"{key} {new:.4f} vs {old:.4f}")
    drops = class_drops(
        current.metrics.get("per_class_ap50", {}),
        candidate.get("per_class_ap50", {}),
        class_tolerance,
        "AP50",
    )
    return GateDecision(accepted and not drops, reasons + drops)


def class_drops(old: dict[str, float], new: dict[str, float], tolerance: float, metric: str) -> list[str]:
    """Why the candidate's per-class ``metric`` is worse: each class of the current model missing from
    it, or more than ``tolerance`` below; empty when none is."""
    drops = []
    for name, before in sorted(old.items()):
        if name not in new:
            drops.append(f"class {name!r} has no {metric} in the candidate's evaluation")
        elif new[name] < before - tolerance:
            drops.append(
                f"class {name!r} {metric} {new[name]:.4f} dropped more than {tolerance} below {before:.4f}"
            )
    return drops


def _entry_json(entry: ModelEntry) -> dict[str, Any]:
    data = asdict(entry)
    if not data["gate"]:
        del data["gate"]  # entries promoted through the ordinary gate keep the format they always had
    return data


def rebaselined(current: ModelEntry, baseline: EvalSummary, candidate_eval_hash: str) -> ModelEntry:
    """``current`` with the metrics of ``baseline``, a re-evaluation of its very file on the set the
    candidate was measured on; a clear error if ``baseline`` is of another file or another set."""
    if baseline.model_sha256 != current.sha256:
        measured = f"sha256 {baseline.model_sha256[:12]}" if baseline.model_sha256 else "no sha256 recorded"
        raise ConfigError(
            f"the baseline summary is not of the current {current.name} {current.version} (it measured "
            f"{baseline.model}, {measured}; the registered file is {current.sha256[:12]}): run "
            "'streetwatch evaluate' on the current model's file"
        )
    if baseline.eval_hash != candidate_eval_hash:
        raise ConfigError(
            f"the baseline was evaluated on another set than the candidate (eval hash "
            f"{baseline.eval_hash[:12]} vs the candidate's {candidate_eval_hash[:12]}): evaluate both on "
            "the same set"
        )
    return replace(current, eval_hash=baseline.eval_hash, metrics=metrics_from_summary(baseline))


def baseline_record(current: ModelEntry, reference: ModelEntry) -> dict[str, Any]:
    """What an entry promoted through a re-baselined gate keeps of it: ``reference`` is ``current``
    re-evaluated on the candidate's set."""
    return {
        "baseline": f"{current.version} re-evaluated on {reference.eval_hash[:12]}",
        "previous_eval_hash": current.eval_hash,
        "baseline_metrics": reference.metrics,
    }


class Registry:
    """Read and write ``registry.json``; paths in it are relative to the registry's folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.models: list[ModelEntry] = []
        self.current: dict[str, str] = {}
        if path.exists():
            self._load()

    def _load(self) -> None:
        if self.path.is_dir():
            raise ConfigError(f"{self.path} is a folder; give the registry file (registry.json)")
        try:
            data = json.loads(self.path.read_text())
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, found {type(data).__name__}")
            self.models = [ModelEntry(**entry) for entry in data.get("models", [])]
            self.current = dict(data.get("current", {}))
        except (json.JSONDecodeError, TypeError, AttributeError, ValueError) as exc:
            raise ConfigError(f"{self.path} is not a model registry: {exc}") from exc

    def save(self) -> None:
        data = {
            "format": REGISTRY_FORMAT,
            "current": self.current,
            "models": [_entry_json(entry) for entry in self.models],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(self.path)  # atomic: a crash never leaves half a registry

    def file_of(self, entry: ModelEntry) -> Path:
        """Where ``entry``'s file is: its path is relative to the registry's folder unless absolute."""
        path = Path(entry.file)
        return path if path.is_absolute() else self.path.parent / path

    def get(self, name: str, version: str) -> ModelEntry | None:
        return next((m for m in self.models if m.name == name and m.version == version), None)

    def current_entry(self, name: str) -> ModelEntry | None:
        version = self.current.get(name)
        return self.get(name, version) if version else None

    def file_entry(self, model_file: Path) -> str:
        """How an entry names ``model_file``: relative to the registry's folder when inside it."""
        try:
            return model_file.resolve().relative_to(self.path.parent.resolve()).as_posix()
        except ValueError:
            return str(model_file.resolve())

    def promote(
        self,
        model_file: Path,
        summary: EvalSummary,
        name: str,
        version: str,
        data_hash: str,
        parent: str | None = None,
        notes: str = "",
        tolerance: float = 0.0,
        class_tolerance: float = 0.02,
        baseline: EvalSummary | None = None,
    ) -> GateDecision:
        """Register ``model_file`` as the current ``name`` if the gate accepts it; save the registry.

        ``baseline`` re-baselines the gate: a summary of the current model's file on the set
        ``summary`` was measured on, compared against instead of the current entry's stored metrics.
        """
        if not model_file.is_file():
            raise ConfigError(f"model file not found: {model_file}")
        if self.get(name, version) is not None:
            raise ConfigError(f"{name} {version} is already registered; give the candidate a new version")
        sha256 = sha256_file(model_file)
        if summary.model_sha256 != sha256:
            measured = f"sha256 {summary.model_sha256[:12]}" if summary.model_sha256 else "no sha256 recorded"
            raise ConfigError(
                f"the evaluation summary is not of {model_file} (it measured {summary.model}, {measured}; "
                f"this file is {sha256[:12]}): run 'streetwatch evaluate' on this very file"
            )
        metrics = metrics_from_summary(summary)
        current = self.current_entry(name)
        gate: dict[str, Any] = {}
        reference = current
        if baseline is not None:
            if current is None:
                raise ConfigError(f"there is no current {name} to re-baseline; promote without a baseline")
            reference = rebaselined(current, baseline, summary.eval_hash)
            gate = baseline_record(current, reference)
        decision = compare(metrics, summary.eval_hash, reference, tolerance, class_tolerance)
        if gate:
            decision.reasons.insert(0, f"gate re-baselined on {gate['baseline']}")
        if not decision.accepted:
            return decision
        file = self.file_entry(model_file)
        self.models.append(
            ModelEntry(
                name=name,
                version=version,
                file=file,
                sha256=sha256,
                data_hash=data_hash,
                eval_hash=summary.eval_hash,
                metrics=metrics,
                parent=parent if parent is not None else (current.version if current else None),
                created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                notes=notes,
                gate=gate,
            )
        )
        self.current[name] = version
        self.save()
        return decision

"""The promotion gate for classifiers (``metrics.task: classify``; today the truck load model).

The detectors' gate (:func:`training.registry.compare`) reads mAP; a classifier is judged on its
held-out crops instead. A candidate replaces the current version only if, on the same crops
(equal ``eval_hash``), its macro accuracy does not drop and no class's accuracy drops by more
than ``class_tolerance``. The per-class rule matters more than the mean: every class of the load
model decides what leaves the box (``uncovered`` raises a case, the others silence a truck), so a
candidate that trades open loads for closed bodies at the same macro accuracy costs real cases.
With 8 open loads among the held-out crops one crop is 0.125 of that class, so the default
tolerance refuses a candidate that loses a single one; a trainer who accepts such a trade says so
with a larger ``--class-tolerance``, and the registry entry records it.
"""

from __future__ import annotations

from typing import Any

from training.registry import GateDecision, ModelEntry, class_drops

TASK = "classify"
DEFAULT_CLASS_TOLERANCE = 0.02


def compare_classifier(
    candidate: dict[str, Any],
    candidate_eval_hash: str,
    current: ModelEntry | None,
    class_tolerance: float = DEFAULT_CLASS_TOLERANCE,
) -> GateDecision:
    """Decide whether a classifier with ``candidate`` metrics may replace ``current``."""
    if current is None:
        return GateDecision(True, [])
    if current.metrics.get("task") != TASK:
        return GateDecision(False, [f"the current {current.name} {current.version} is not a classifier"])
    if candidate_eval_hash != current.eval_hash:
        return GateDecision(
            False,
            [
                f"scored on other crops (eval hash {candidate_eval_hash[:12]} vs the current "
                f"{current.version}'s {current.eval_hash[:12]}): the val split changed, so re-baseline "
                "with the current model evaluated on it (--baseline-eval)"
            ],
        )
    new, old = float(candidate["macro_accuracy"]), float(current.metrics["macro_accuracy"])
    if new < old:
        reasons = [f"macro accuracy {new:.4f} is below the current {current.version}'s {old:.4f}"]
    else:
        reasons = [f"macro accuracy {new:.4f} vs {old:.4f}"]
    drops = class_drops(
        current.metrics.get("per_class_accuracy", {}),
        candidate.get("per_class_accuracy", {}),
        class_tolerance,
        "accuracy",
    )
    return GateDecision(new >= old and not drops, reasons + drops)

"""Try a downloaded truck load classifier before the load stage uses it.

A model is refused when it does not load as a load classifier (not ONNX; no ``names`` /
``imgsz`` / ``crop_margin`` metadata; a class that is no truck load; an output width that is
not its class count: :class:`edge.truck_load.LoadClassifier` says which), when its metadata
names another model or version than the signed release (events and the status would name
what the server did not send), when it lacks a class the running model answers (the box
could never give that answer again), when its answers are not probabilities, or when it fails
on a crop. The crops: the last trucks the box classified, where the running model's answers
are compared with the new one's (more than ``updates.max_drift`` of them different: refused);
a box that has seen no truck yet tries it on the middle of its latest frame instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.frames import Frame
from edge.truck_load import LoadClassifier, LoadVerdict
from edge.updates.artifact import UpdateRefused
from edge.updates.classifier_slot import Crop

log = logging.getLogger(__name__)

#: How far a model's answers may sum away from 1 and still be probabilities (float32 softmax).
SUM_TOLERANCE = 0.01
#: Where a box that has seen no truck tries a new model: a grey frame of a camera's usual size.
_BLANK = (480, 640, 3)


@dataclass(frozen=True)
class ClassifierProbeReport:
    crops: int  # crops the new model answered
    compared: int  # of them, also answered by the running model
    changed: int  # compared crops whose answer changed
    trucks: bool  # True: recent truck crops; False: the middle of a recent frame
    infer_ms: float

    @property
    def drift(self) -> float:
        return self.changed / self.compared if self.compared else 0.0


def probe_classifier(
    path: Path,
    *,
    name: str,
    version: str,
    providers: Sequence[str],
    old: LoadClassifier,
    crops: Sequence[Crop],
    frames: Sequence[Frame],
    max_drift: float,
) -> tuple[LoadClassifier, ClassifierProbeReport]:
    """Load ``path`` as the box's load classifier and check it; raise :class:`UpdateRefused`."""
    try:
        new = LoadClassifier(path, providers, threads=1)  # one thread: it runs beside the inference workers
    except Exception as exc:
        raise UpdateRefused("probe", f"the model does not load as a truck load classifier: {exc}") from exc
    if (new.name, new.version) != (name, version):
        raise UpdateRefused(
            "probe",
            f"the file's metadata says it is {new.name} {new.version}, the release says {name} {version} "
            "(export it with that name and version, or release it under the ones it carries)",
        )
    lost = [c.value for c in old.classes if c not in new.classes]
    if lost:
        raise UpdateRefused(
            "probe",
            f"the model cannot answer {lost}, which the running {old.label} answers "
            f"(it has: {', '.join(c.value for c in new.classes)})",
        )
    trucks = bool(crops)
    tried = list(crops) if trucks else [_middle_of(frames)]
    changed = compared = 0
    spent = 0.0
    for image, box in tried:
        try:
            started = time.perf_counter()
            answer = new.classify(image, box)
            spent += time.perf_counter() - started
        except Exception as exc:
            raise UpdateRefused("probe", f"the model fails on a truck crop: {exc}") from exc
        _check_probabilities(answer)
        if not trucks:
            continue
        try:
            before = old.classify(image, box)
        except Exception as exc:  # the old model failing is no reason to refuse the new one
            log.warning("probe: the running load classifier failed on a recent crop (%s); not compared", exc)
            continue
        compared += 1
        changed += before.load is not answer.load
    report = ClassifierProbeReport(len(tried), compared, changed, trucks, 1000 * spent / len(tried))
    if report.drift > max_drift:
        raise UpdateRefused(
            "probe",
            f"the model answers {changed} of the {compared} trucks the box classified last differently "
            f"from the running {old.label} ({report.drift:.0%}; updates.max_drift is {max_drift:.0%})",
        )
    return new, report


def _check_probabilities(verdict: LoadVerdict) -> None:
    values = np.array(list(verdict.probabilities.values()), dtype=np.float64)
    total = float(values.sum())
    if values.min() < 0 or values.max() > 1 or abs(total - 1.0) > SUM_TOLERANCE:
        raise UpdateRefused(
            "probe",
            f"the model's answers are not probabilities (they sum to {total:.3g}, range "
            f"{values.min():.3g}..{values.max():.3g}); export it with its softmax",
        )


def _middle_of(frames: Sequence[Frame]) -> Crop:
    """The middle half of the latest frame (any vehicle-sized region runs the model's whole graph)."""
    image = frames[-1].image if frames else np.full(_BLANK, 114, dtype=np.uint8)
    h, w = image.shape[:2]
    return image, (w / 4, h / 4, 3 * w / 4, 3 * h / 4)

"""The truck load classifier: one confirmed truck's crop in, its load and a probability out.

The ONNX model describes itself (``training/truck_load/train.py`` writes it): ``names`` (its
output classes, each one of :class:`streetwatch.events.TruckLoad`), ``imgsz``, ``crop_margin``
(context cut around the box, as in training), and ``streetwatch_model`` / ``version``. Input:
the crop letterboxed (centred, grey 114) to ``imgsz``, RGB, 0-1; output: one probability per
class. A model whose metadata is missing or names an unknown class is refused with the reason.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.detector.letterbox import letterbox, to_tensor
from edge.detector.metadata import from_onnx_props
from edge.detector.session import open_session
from edge.evidence.render import crop
from streetwatch.errors import ModelFormatError
from streetwatch.events import ModelRef, TruckLoad

log = logging.getLogger(__name__)

#: Classes a load model may output; ``unsure`` is the box's own answer, never the model's.
MODEL_CLASSES = frozenset(load.value for load in TruckLoad if load is not TruckLoad.unsure)


@dataclass(frozen=True)
class LoadVerdict:
    """The model's likeliest class and the probability of every class (model order)."""

    load: TruckLoad
    score: float
    probabilities: dict[str, float]
    #: ``"<name> <version>"`` of the model that answered (a model update may swap it right after).
    model: str = ""


class LoadClassifier:
    """Classifies truck crops with an ONNX load model (about 3 ms per crop on one CPU core)."""

    def __init__(self, model_path: Path, providers: Sequence[str], threads: int = 1) -> None:
        self.session = open_session(model_path, list(providers), "truck load classifier", threads)
        props: dict[str, str] = self.session.get_modelmeta().custom_metadata_map
        meta = from_onnx_props(props, str(model_path))
        if meta.class_names is None or meta.input_hw is None:
            raise ModelFormatError(
                f"{model_path}: a load classifier must name its classes and input size in its metadata "
                "('names', 'imgsz'); export it with training.truck_load.train"
            )
        unknown = sorted(set(meta.class_names) - MODEL_CLASSES)
        if unknown:
            raise ModelFormatError(
                f"{model_path}: classes {unknown} are not truck loads; expected {sorted(MODEL_CLASSES)}"
            )
        outputs = self.session.get_outputs()
        width = outputs[0].shape[-1] if outputs and outputs[0].shape else None
        if isinstance(width, int) and width != len(meta.class_names):
            raise ModelFormatError(f"{model_path}: {width} outputs but {len(meta.class_names)} class names")
        self.classes = tuple(TruckLoad(name) for name in meta.class_names)
        self.input_hw = meta.input_hw
        self.crop_margin = _margin(props.get("crop_margin"), model_path)
        self.name = meta.name or model_path.stem
        self.version = meta.version or "unknown"
        self._input = self.session.get_inputs()[0].name

    @property
    def label(self) -> str:
        """``"<name> <version>"``, as events carry it (``attributes.load_model``)."""
        return f"{self.name} {self.version}"

    @property
    def ref(self) -> ModelRef:
        """The model as the box's status names it (beside its detectors)."""
        return ModelRef(name=self.name, version=self.version)

    def classify(self, image: NDArray[np.uint8], box: Sequence[float]) -> LoadVerdict:
        """The load of the truck in ``box`` (pixels of the BGR ``image``)."""
        piece = crop(image, box, self.crop_margin, max_side=100_000)
        canvas, _ = letterbox(piece, self.input_hw, center=True)
        output: Any = self.session.run(None, {self._input: to_tensor(canvas, rgb=True, scale=1 / 255)})[0]
        probs = np.asarray(output, dtype=np.float64).reshape(-1)
        if probs.shape[0] != len(self.classes) or not np.all(np.isfinite(probs)):
            raise ModelFormatError(
                f"load classifier returned {probs.shape[0]} values, not {len(self.classes)}"
            )
        best = int(np.argmax(probs))
        return LoadVerdict(
            load=self.classes[best],
            score=float(probs[best]),
            probabilities={c.value: float(p) for c, p in zip(self.classes, probs, strict=True)},
            model=self.label,
        )


def _margin(value: str | None, model_path: Path) -> float:
    if value is None:
        raise ModelFormatError(
            f"{model_path}: metadata 'crop_margin' is missing (the context it was trained with)"
        )
    try:
        margin = float(ast.literal_eval(value))
    except (ValueError, SyntaxError) as exc:
        raise ModelFormatError(f"{model_path}: metadata 'crop_margin' {value!r} is not a number") from exc
    if not 0 <= margin <= 1:
        raise ModelFormatError(f"{model_path}: metadata 'crop_margin' {margin} is outside 0..1")
    return margin

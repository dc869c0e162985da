"""Test-time flip: one detector run on the frame and on its mirror image, the two answers merged.

Why: a detector trained with horizontal flips sees a mirrored sign or pile as another sample of
the same object, and its two answers differ most on the objects it is least sure of. An object
found in both views is more likely real than one found in one; boxes found in one view only are
the recall a single pass loses. The cost is a second inference per frame for that detector.

Merging (per class, greedy by score): a box from one view and a box of the same class from the
other view overlapping at ``iou`` or more are one object, whose box is their score-weighted mean
and whose score is ``merge`` of the two (``mean``: an object seen in one view only scores half,
as if the other view gave 0; ``max``: the higher of the two, so a box seen once keeps its score).
``single_view`` sets the share an object one view alone sees keeps, anywhere between: halving
discounts a real but unsure pile that one view misses as much as noise, keeping the whole score
keeps the noise too.

The wrapper has the same three stages as ``OnnxDetector``, so the pipeline's threads, fusion
(``edge.detector.fusion``) and the tracker see one detector as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge.config import DetectorConfig
from edge.detections import Detections
from edge.detector.onnx_detector import check_image
from edge.detector.staged import StagedDetector, as_staged
from edge.geometry import iou_matrix
from edge.interfaces import Detector
from streetwatch.errors import ConfigError

FlipMerge = Literal["mean", "max"]


@dataclass(frozen=True)
class FlippedPrepared:
    width: int
    prepared: tuple[Any, Any]  # the frame's, the mirror's


class FlippedDetector:
    """A detector run on the frame and its mirror image, the answers merged per object."""

    def __init__(
        self,
        detector: Detector | StagedDetector,
        iou: float,
        merge: FlipMerge,
        classes: Sequence[str] | None,
        single_view: float | None = None,
    ) -> None:
        self.inner = as_staged(detector)
        self.info = self.inner.info
        unknown = sorted(set(classes or ()) - set(self.info.class_names))
        if unknown:
            raise ConfigError(f"flip.classes {unknown} are not classes of model {self.info.name}")
        self.iou = iou
        self.merge = merge
        self.single_view = single_view
        self.classes = None if classes is None else np.asarray(list(classes))

    @property
    def providers(self) -> list[str]:
        """The wrapped detector's providers (the pipeline asks whether it runs on a GPU)."""
        return list(getattr(self.inner, "providers", ["CPUExecutionProvider"]))

    def prepare(self, image: NDArray[np.uint8]) -> FlippedPrepared:
        width = check_image(image).shape[1]
        mirror = np.ascontiguousarray(image[:, ::-1])
        return FlippedPrepared(width, (self.inner.prepare(image), self.inner.prepare(mirror)))

    def infer(self, prepared: FlippedPrepared) -> list[Any]:
        return [self.inner.infer(p) for p in prepared.prepared]

    def finish(self, outputs: Sequence[Any], prepared: FlippedPrepared) -> Detections:
        seen = self.inner.finish(outputs[0], prepared.prepared[0])
        mirrored = self.inner.finish(outputs[1], prepared.prepared[1])
        back = mirrored.xyxy.copy()
        back[:, 0], back[:, 2] = prepared.width - mirrored.xyxy[:, 2], prepared.width - mirrored.xyxy[:, 0]
        mirrored = Detections(
            back, mirrored.confidence, mirrored.class_id, mirrored.class_name, mirrored.detector_index
        )
        if self.classes is None:
            return merge_views(seen, mirrored, self.iou, self.merge, self.single_view)
        both_views = np.isin(seen.class_name, self.classes)
        mirrored = mirrored[np.isin(mirrored.class_name, self.classes)]
        merged = merge_views(seen[both_views], mirrored, self.iou, self.merge, self.single_view)
        return Detections.merge([merged, seen[~both_views]])

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        prepared = self.prepare(image)
        return self.finish(self.infer(prepared), prepared)


def merge_views(
    a: Detections, b: Detections, iou: float, merge: FlipMerge, single_view: float | None = None
) -> Detections:
    """One box per object seen in ``a``, ``b`` or both (see the module docstring).

    >>> one = Detections(np.array([[0, 0, 10, 10]], np.float32), np.array([0.8], np.float32),
    ...                  np.array([0]), np.array(["sign"]), np.array([0]))
    >>> other = Detections(np.array([[1, 0, 11, 10], [50, 50, 60, 60]], np.float32),
    ...                    np.array([0.6, 0.4], np.float32), np.array([0, 0]), np.array(["sign", "sign"]),
    ...                    np.array([0, 0]))
    >>> merged = merge_views(one, other, 0.5, "mean")
    >>> [round(float(s), 2) for s in merged.confidence]
    [0.7, 0.2]
    """
    if single_view is None:
        single_view = 0.5 if merge == "mean" else 1.0
    both = Detections.merge([a, b])
    view = np.concatenate([np.zeros(len(a), dtype=bool), np.ones(len(b), dtype=bool)])
    order = np.argsort(-both.confidence, kind="stable")
    overlap = iou_matrix(both.xyxy, both.xyxy)
    used = np.zeros(len(both), dtype=bool)
    keep: list[int] = []
    xyxy = both.xyxy.copy()
    score = both.confidence.copy()
    for i in order:
        if used[i]:
            continue
        used[i] = True
        partners = np.flatnonzero(
            ~used & (view != view[i]) & (both.class_id == both.class_id[i]) & (overlap[i] >= iou)
        )
        if len(partners):
            j = partners[np.argmax(overlap[i, partners])]
            used[j] = True
            weights = both.confidence[[i, j]]
            xyxy[i] = (both.xyxy[[i, j]] * weights[:, None]).sum(axis=0) / weights.sum()
            score[i] = weights.mean() if merge == "mean" else weights.max()
        else:
            score[i] = both.confidence[i] * single_view
        keep.append(int(i))
    index = np.asarray(keep, dtype=np.int64)
    return Detections(
        xyxy[index], score[index], both.class_id[index], both.class_name[index], both.detector_index[index]
    )


def with_flip(detector: Detector | StagedDetector, config: DetectorConfig) -> Detector | StagedDetector:
    """``detector`` run on the mirrored frame too, as ``config.flip`` says; unchanged without it."""
    if config.flip is None:
        return detector
    flip = config.flip
    return FlippedDetector(detector, flip.iou, flip.merge, flip.classes, flip.single_view)

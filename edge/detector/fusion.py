"""Weighted box fusion across detectors, with the classes of one family competing for each object.

Why: two models each see part of the world. The shipped streetwatch-det finds trucks in
elevated traffic views and misses them at street level; COCO YOLOX-nano finds street-level
trucks and also calls many cars "truck". Fusing their *vehicle* boxes lets each object be
decided by both: the boxes of every fused class are clustered regardless of class, and each
cluster's class is the one with the highest weighted score over the members, so a ``truck``
box from one model that overlaps a more confident ``car`` from the other becomes a car.

Score of class ``c`` in a cluster, with member weights ``w_d`` (``FusionConfig.score``):

* ``mean``: ``sum_d w_d * best_d(c) / sum_d w_d``, where ``best_d(c)`` is member ``d``'s best
  score for ``c`` in the cluster (0 if it has none): a class only one member sees is halved,
  as in weighted box fusion (Solovyev et al., 2021);
* ``max``: ``max_d w_d * best_d(c)``.

The fused box is the score-weighted mean of the cluster's boxes of the winning class. Fused
rows are reported as detector ``report_as`` with class ids :data:`FUSED_CLASS_ID_BASE` + the
class's position in ``classes`` (stable, so the tracker keeps their tracks); rows of other
detectors or other classes pass through unchanged. ``context`` classes vote without ever being
emitted as fused boxes, and their own rows pass through: an overflowing bin that YOLOX calls a
truck stays an overflowing bin and raises no truck.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.config import FusionConfig
from edge.detections import Detections
from edge.geometry import box_iou_one_to_many

#: Class ids of fused rows start here, clear of any model's own ids.
FUSED_CLASS_ID_BASE = 10_000


class BoxFusion:
    """Fuses the configured detectors' boxes of the configured classes in one frame's detections.

    >>> from edge.config import FusionConfig
    >>> config = FusionConfig(detectors=[0, 1], report_as=1, classes={"truck": ["truck"], "car": ["car"]})
    >>> fusion = BoxFusion(config)
    >>> d = Detections(xyxy=np.array([[0, 0, 100, 50], [2, 0, 100, 52]]), confidence=np.array([0.6, 0.9]),
    ...                class_id=np.array([7, 4]), class_name=np.array(["truck", "car"]),
    ...                detector_index=np.array([0, 1]))
    >>> out = fusion.fuse(d)
    >>> out.class_name.tolist(), round(float(out.confidence[0]), 2), out.detector_index.tolist()
    (['car'], 0.45, [1])
    """

    def __init__(self, config: FusionConfig) -> None:
        self.config = config
        self._fused_names = list(config.classes)
        self._class_of = {alias: i for i, names in enumerate(config.classes.values()) for alias in names}
        self._context = np.asarray([name in config.context for name in self._fused_names], dtype=bool)
        weights = config.weights or [1.0] * len(config.detectors)
        self._member = {d: m for m, d in enumerate(config.detectors)}
        self._weights = np.asarray(weights, dtype=np.float32)

    def fuse(self, detections: Detections) -> Detections:
        if not len(detections):
            return detections
        fused_class = np.asarray(
            [self._class_of.get(str(n), -1) for n in detections.class_name], dtype=np.int64
        )
        member = np.asarray([self._member.get(int(d), -1) for d in detections.detector_index], dtype=np.int64)
        take = (fused_class >= 0) & (member >= 0)
        if not take.any():
            return detections
        rows = np.flatnonzero(take)
        fused = self._fuse_rows(
            detections.xyxy[rows], detections.confidence[rows], fused_class[rows], member[rows]
        )
        # Context rows voted; they also go on as they came (their class may raise its own violation).
        passed = ~take | (take & self._context[np.maximum(fused_class, 0)])
        return Detections.merge([detections[passed], fused])

    def _fuse_rows(
        self,
        xyxy: NDArray[np.float32],
        scores: NDArray[np.float32],
        classes: NDArray[np.int64],
        members: NDArray[np.int64],
    ) -> Detections:
        clusters = _cluster(xyxy, scores, self.config.iou)
        boxes: list[NDArray[np.float32]] = []
        out_scores: list[float] = []
        out_classes: list[int] = []
        for cluster in clusters:
            # best[m, c]: member m's best score for class c in this cluster
            best = np.zeros((len(self._weights), len(self._fused_names)), dtype=np.float32)
            np.maximum.at(best, (members[cluster], classes[cluster]), scores[cluster])
            weighted = best * self._weights[:, None]
            if self.config.score == "mean":
                per_class = weighted.sum(axis=0) / float(self._weights.sum())
            else:
                per_class = weighted.max(axis=0)
            winner = int(np.argmax(per_class))
            if self._context[winner] or per_class[winner] < self.config.conf:
                continue
            same = cluster[classes[cluster] == winner]
            w = scores[same] * self._weights[members[same]]
            if float(w.sum()) <= 0:
                continue
            boxes.append((xyxy[same] * w[:, None]).sum(axis=0) / float(w.sum()))
            out_scores.append(float(per_class[winner]))
            out_classes.append(winner)
        n = len(boxes)
        return Detections(
            xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
            confidence=np.asarray(out_scores, dtype=np.float32),
            class_id=np.asarray(out_classes, dtype=np.int64) + FUSED_CLASS_ID_BASE,
            class_name=np.asarray([self._fused_names[c] for c in out_classes], dtype=np.str_).reshape(n),
            detector_index=np.full(n, self.config.report_as, dtype=np.int64),
        )


def _cluster(xyxy: NDArray[np.float32], scores: NDArray[np.float32], iou: float) -> list[NDArray[np.int64]]:
    """Greedy clusters, best score first: a box joins the cluster whose leading box it overlaps most
    (IoU >= ``iou``), else starts one. Row indexes per cluster."""
    order = np.argsort(-scores, kind="stable")
    leaders: list[int] = []
    members: list[list[int]] = []
    for row in order.tolist():
        if leaders:
            overlaps = box_iou_one_to_many(xyxy[row], xyxy[np.asarray(leaders)])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou:
                members[best].append(row)
                continue
        leaders.append(row)
        members.append([row])
    return [np.asarray(m, dtype=np.int64) for m in members]

"""Pure decode functions: raw model outputs → candidate boxes in model-input pixels.

Each takes numpy arrays and thresholds and returns :class:`RawDetections`; no
session, no image, no letterbox. That keeps them testable on saved arrays and
lets a backend plugin be a few lines of glue (see ``backends.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from edge.detector.nms import nms

YOLOX_STRIDES: tuple[int, ...] = (8, 16, 32)


@dataclass(frozen=True)
class RawDetections:
    """Decoded boxes (``xyxy`` in model-input pixels), scores and class ids, best first."""

    xyxy: NDArray[np.float32]
    scores: NDArray[np.float32]
    class_ids: NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls) -> RawDetections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64))


def cxcywh_to_xyxy(boxes: NDArray[np.float32]) -> NDArray[np.float32]:
    half = boxes[:, 2:4] / 2
    return np.concatenate([boxes[:, 0:2] - half, boxes[:, 0:2] + half], axis=1).astype(np.float32)


def _best_class_nms(
    boxes_cxcywh: NDArray[np.float32],
    class_scores: NDArray[np.float32],
    conf: float,
    iou: float,
    max_det: int,
    max_candidates: int,
) -> RawDetections:
    """Keep each box's best class above ``conf``, then class-aware NMS."""
    best = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(class_scores.shape[0]), best]
    mask = scores > conf
    if not mask.any():
        return RawDetections.empty()
    boxes = cxcywh_to_xyxy(boxes_cxcywh[mask])
    scores, best = scores[mask].astype(np.float32), best[mask].astype(np.int64)
    if scores.shape[0] > max_candidates:  # a near-zero conf on an untrained model: bound the NMS work
        top = np.argsort(-scores, kind="stable")[:max_candidates]
        boxes, scores, best = boxes[top], scores[top], best[top]
    keep = nms(boxes, scores, best, iou, max_det)
    return RawDetections(boxes[keep], scores[keep], best[keep])


def decode_yolov8(
    output: NDArray[np.float32], conf: float, iou: float, max_det: int = 300, max_candidates: int = 30000
) -> RawDetections:
    """Ultralytics YOLOv8/YOLO11/yolov5u detect head: (1, 4 + nc, N) rows cx, cy, w, h, class scores."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[1] < 5:
        raise ValueError(f"yolov8 output must have shape (1, 4 + nc, N), got {output.shape}")
    rows = output[0].T  # (N, 4 + nc); a view, no copy
    return _best_class_nms(rows[:, :4], rows[:, 4:], conf, iou, max_det, max_candidates)


def decode_end2end(output: NDArray[np.float32], conf: float, max_det: int = 300) -> RawDetections:
    """NMS-included export: (1, K, 6) rows x1, y1, x2, y2, score, class; already suppressed."""
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[2] != 6:
        raise ValueError(f"end2end output must have shape (1, K, 6), got {output.shape}")
    rows = output[0]
    rows = rows[rows[:, 4] > conf]
    rows = rows[np.argsort(-rows[:, 4], kind="stable")][:max_det]
    return RawDetections(
        rows[:, :4].astype(np.float32), rows[:, 4].astype(np.float32), rows[:, 5].round().astype(np.int64)
    )


@lru_cache(maxsize=8)
def yolox_grid(input_hw: tuple[int, int], strides: tuple[int, ...] = YOLOX_STRIDES) -> NDArray[np.float32]:
    """(N, 3) rows grid_x, grid_y, stride for every output row, strides in order, row-major per level."""
    parts = []
    for s in strides:
        gh, gw = input_hw[0] // s, input_hw[1] // s
        ys, xs = np.meshgrid(np.arange(gh), np.arange(gw), indexing="ij")
        parts.append(np.stack([xs.ravel(), ys.ravel(), np.full(gh * gw, s)], axis=1))
    grid = np.concatenate(parts).astype(np.float32)
    grid.setflags(write=False)  # shared by every call through the cache
    return grid


def decode_yolox(
    output: NDArray[np.float32],
    input_hw: tuple[int, int],
    conf: float,
    iou: float,
    max_det: int = 300,
    max_candidates: int = 30000,
) -> RawDetections:
    """YOLOX head without decode: (1, N, 5 + nc) rows x, y, log w, log h, objectness, class scores.

    xy = (xy + grid) × stride, wh = exp(wh) × stride, score = objectness × class score
    (both already sigmoid-ed in the export).
    """
    grid = yolox_grid(input_hw)
    if output.ndim != 3 or output.shape[0] != 1 or output.shape[2] < 6 or output.shape[1] != grid.shape[0]:
        raise ValueError(
            f"yolox output for input {input_hw} must have shape (1, {grid.shape[0]}, 5 + nc), "
            f"got {output.shape}"
        )
    rows = output[0]
    obj = rows[:, 4]
    # Cheap pre-filter: score ≤ objectness, so rows with low objectness cannot pass.
    cand = obj > conf
    rows, g = rows[cand], grid[cand]
    xy = (rows[:, 0:2] + g[:, 0:2]) * g[:, 2:3]
    wh = np.exp(np.minimum(rows[:, 2:4], 20.0)) * g[:, 2:3]  # cap: exp overflow on garbage outputs
    class_scores = rows[:, 5:] * rows[:, 4:5]
    return _best_class_nms(np.concatenate([xy, wh], axis=1), class_scores, conf, iou, max_det, max_candidates)

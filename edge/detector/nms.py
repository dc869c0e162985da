"""Class-aware non-maximum suppression in numpy (pure, no model involved)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from edge.geometry import box_iou_one_to_many


def nms(
    xyxy: NDArray[np.float32],
    scores: NDArray[np.float32],
    class_ids: NDArray[np.int64],
    iou_threshold: float,
    max_det: int = 300,
) -> NDArray[np.int64]:
    """Indices of the boxes kept, best score first; boxes of different classes never suppress each other.

    Greedy NMS like ``torchvision.ops.batched_nms``: a box is dropped when its IoU with a
    higher-scoring kept box *of the same class* exceeds ``iou_threshold``.

    >>> boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], dtype=np.float32)
    >>> nms(boxes, np.array([0.9, 0.8, 0.7], dtype=np.float32), np.array([0, 0, 1]), 0.5).tolist()
    [0, 2]
    """
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    if xyxy.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    # Shift each class into its own region of the plane: one pass then handles all classes.
    offset = float(np.abs(xyxy).max()) + 1.0
    shifted = xyxy + (np.asarray(class_ids, dtype=np.float32) * offset)[:, None]
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < max_det:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        if not rest.size:
            break
        order = rest[box_iou_one_to_many(shifted[best], shifted[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)

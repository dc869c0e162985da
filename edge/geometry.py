"""Axis-aligned boxes ``(x1, y1, x2, y2)`` in pixels: overlap (IoU) and clipping to a frame.

One implementation for every caller: NMS and fusion (one box against many), the tracker (every
track against every detection), the rules (one box against one box) and the benchmarks and
training recipes that score detections. Plain numpy: the box has no torchvision.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: A box as plain floats.
Box = tuple[float, float, float, float]


def iou_matrix(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """IoU of every box in ``a`` (N, 4) against every box in ``b`` (M, 4); shape (N, M).

    A box with no area overlaps nothing (IoU 0), and an empty side gives an empty matrix.

    >>> iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]])).round(3).tolist()
    [[0.333, 0.0]]
    >>> iou_matrix(np.zeros((0, 4)), np.array([[0, 0, 1, 1]])).shape
    (0, 1)
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def inside_share_matrix(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Share of each box in ``a`` (N, 4) that lies inside each box in ``b`` (M, 4); shape (N, M).

    A part of an object seen beside the whole one (a truck's cab, a sign's lower band) has a low
    IoU with it but lies inside it; a box with no area lies inside nothing.

    >>> inside_share_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 100, 100], [5, 0, 15, 10]])).tolist()
    [[1.0, 0.5]]
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float64)
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    return np.where(area_a[:, None] > 0, w * h / np.maximum(area_a[:, None], 1e-12), 0.0)


def box_iou_one_to_many(box: ArrayLike, boxes: ArrayLike) -> NDArray[np.float32]:
    """IoU of one box against (N, 4) boxes, as float32 (what detections carry).

    >>> box_iou_one_to_many([0, 0, 10, 10], np.array([[0, 0, 10, 10], [0, 0, 10, 5]])).tolist()
    [1.0, 0.5]
    """
    return iou_matrix(box, boxes)[0].astype(np.float32)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two boxes.

    >>> iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    return float(iou_matrix(a, b)[0, 0])


def clip_box(xyxy: ArrayLike, width: float, height: float) -> Box | None:
    """The box cut to a ``width`` x ``height`` frame; None when nothing of it is inside.

    >>> clip_box([-5, 10, 50, 300], 40, 200)
    (0.0, 10.0, 40.0, 200.0)
    >>> clip_box([50, 10, 60, 20], 40, 200) is None
    True
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(xyxy, dtype=np.float64).reshape(4))
    x1, x2 = min(max(x1, 0.0), float(width)), min(max(x2, 0.0), float(width))
    y1, y2 = min(max(y1, 0.0), float(height)), min(max(y2, 0.0), float(height))
    if x2 <= x1 or y2 <= y1:
        return None
    return (x1, y1, x2, y2)

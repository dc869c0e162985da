"""Box overlap and assignment for the tracker, in plain numpy.

Assignment is greedy by IoU (best pair first) rather than Hungarian: scipy is
not in the edge's dependency budget, and in street scenes the objects we track
(stalls, bins, trucks, signs) rarely overlap one another, so the cases where
greedy and optimal assignment differ (two tracks each overlapping two boxes
almost equally) are rare and cost at most a swapped id for a frame. Greedy is
O(n·m·log(n·m)) and vectorised; n and m are tens at most.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU of every box in ``a`` (N, 4) against every box in ``b`` (M, 4), both ``xyxy``; shape (N, M).

    >>> iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [20, 20, 30, 30]])).round(3).tolist()
    [[0.333, 0.0]]
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


def greedy_match(
    similarity: NDArray[np.float64], threshold: float
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Pair rows with columns, highest similarity first, ignoring pairs below ``threshold``.

    Returns ``(pairs, unmatched_rows, unmatched_cols)``.

    >>> greedy_match(np.array([[0.9, 0.8], [0.85, 0.1]]), 0.3)
    ([(0, 0)], [1], [1])
    """
    rows, cols = similarity.shape
    pairs: list[tuple[int, int]] = []
    if rows and cols:
        flat_order = np.argsort(-similarity, axis=None, kind="stable")
        used_rows = np.zeros(rows, dtype=bool)
        used_cols = np.zeros(cols, dtype=bool)
        for flat in flat_order:
            r, c = divmod(int(flat), cols)
            if similarity[r, c] < threshold:
                break
            if used_rows[r] or used_cols[c]:
                continue
            used_rows[r] = used_cols[c] = True
            pairs.append((r, c))
    matched_rows = {r for r, _ in pairs}
    matched_cols = {c for _, c in pairs}
    return (
        pairs,
        [r for r in range(rows) if r not in matched_rows],
        [c for c in range(cols) if c not in matched_cols],
    )

"""Assignment of tracks to detections for the tracker, in plain numpy (IoU: :mod:`edge.geometry`).

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

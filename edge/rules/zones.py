"""Include / exclude polygons, tested on a box's bottom-centre (where an object touches the ground)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.config import Zone


class ZoneFilter:
    """Decides whether a box lies where its violation type counts.

    With include zones, the box's bottom-centre must be inside at least one of
    them; it must never be inside an exclude zone. No zones: everything counts.

    >>> from edge.config import Zone
    >>> kerb = [(0, 50), (100, 50), (100, 100), (0, 100)]
    >>> f = ZoneFilter([Zone(name="kerb", kind="include", polygon=kerb)])
    >>> f.allows((10, 0, 30, 80)), f.allows((10, 0, 30, 40))
    (True, False)
    """

    def __init__(self, zones: Sequence[Zone]) -> None:
        self._include = [_contour(z) for z in zones if z.kind == "include"]
        self._exclude = [_contour(z) for z in zones if z.kind == "exclude"]

    def allows(self, box: Sequence[float]) -> bool:
        point = ((float(box[0]) + float(box[2])) / 2.0, float(box[3]))
        if self._include and not any(_inside(c, point) for c in self._include):
            return False
        return not any(_inside(c, point) for c in self._exclude)


def _contour(zone: Zone) -> NDArray[np.float32]:
    return np.asarray(zone.polygon, dtype=np.float32).reshape(-1, 1, 2)


def _inside(contour: NDArray[np.float32], point: tuple[float, float]) -> bool:
    # >= 0: on the edge counts as inside, so a box standing on a zone's border is not lost.
    return bool(cv2.pointPolygonTest(contour, point, False) >= 0)

"""Distances on the Earth's surface."""

from __future__ import annotations

import math

from streetwatch.geo import EARTH_RADIUS_M
from streetwatch.geo import distance_m as haversine_m

__all__ = ["EARTH_RADIUS_M", "haversine_m", "metres_to_degrees"]


def metres_to_degrees(lat: float, metres: float) -> tuple[float, float]:
    """How many degrees of latitude and of longitude ``metres`` span at latitude ``lat``."""
    dlat = math.degrees(metres / EARTH_RADIUS_M)
    cos_lat = max(math.cos(math.radians(lat)), 1e-6)
    dlon = math.degrees(metres / (EARTH_RADIUS_M * cos_lat))
    return dlat, min(dlon, 360.0)

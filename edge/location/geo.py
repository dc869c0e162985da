"""Great-circle helpers on WGS 84 coordinates (spherical Earth: plenty for metres-scale tracks)."""

from __future__ import annotations

import math

from streetwatch.geo import EARTH_RADIUS_M, distance_m

__all__ = ["EARTH_RADIUS_M", "bearing_deg", "distance_m", "normalise_heading"]


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from true north, in [0, 360).

    >>> round(bearing_deg(0, 0, 1, 0)), round(bearing_deg(0, 0, 0, 1)), round(bearing_deg(0, 0, -1, 0))
    (0, 90, 180)
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    y = math.sin(dl) * math.cos(p2)
    x = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return normalise_heading(math.degrees(math.atan2(y, x)))


def normalise_heading(degrees: float) -> float:
    """Fold an angle into [0, 360) (guarding against 360.0 from rounding)."""
    value = degrees % 360.0
    return 0.0 if value >= 360.0 else value


def interpolate(lat1: float, lon1: float, lat2: float, lon2: float, fraction: float) -> tuple[float, float]:
    """Linear interpolation between two nearby points (the shorter way across the antimeridian).

    >>> interpolate(0.0, 179.8, 0.2, -179.8, 0.75)
    (0.15000000000000002, -179.9)
    """
    dlon = lon2 - lon1
    if dlon > 180.0:  # wrap only when crossing, so ordinary coordinates keep their exact digits
        dlon -= 360.0
    elif dlon < -180.0:
        dlon += 360.0
    lon = lon1 + fraction * dlon
    if lon >= 180.0:
        lon -= 360.0
    elif lon < -180.0:
        lon += 360.0
    return lat1 + fraction * (lat2 - lat1), lon

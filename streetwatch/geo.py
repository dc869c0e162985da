"""Distances on the Earth's surface, one definition for the box, the server and the wire format.

A spherical Earth (the mean radius) is within 0.5 % of the ellipsoid, plenty at street scale.

>>> round(distance_m(0, 0, 0, 1))  # one degree along the equator
111195
>>> lat, lon = moved(10.0, 106.0, east_m=30.0, north_m=40.0)
>>> round(distance_m(10.0, 106.0, lat, lon), 3)
50.0
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS 84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def moved(lat: float, lon: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m`` east and ``north_m`` north of (lat, lon): flat at street scale, the
    longitude folded into [-180, 180) (a route may cross the antimeridian)."""
    new_lat = lat + math.degrees(north_m / EARTH_RADIUS_M)
    new_lon = lon + math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return new_lat, (new_lon + 180.0) % 360.0 - 180.0

"""Geohash cells: the spatial index of cases.

A case is stored with the geohash of its position. To find every case within
``radius`` metres of a point, look in the cells that cover the bounding box of
the circle (:func:`cells_covering`): usually one to four cells, whatever the
number of cases, so candidate lookup is an indexed ``cell IN (...)`` query whose
cost does not grow with the table. The same cell set is what ingest workers
lock, so two events within one radius of each other always share a lock.

Why hand-written: the geohash packages (``python-geohash``, ``pygeohash``, ``geohash2``) encode
and decode single points, but none covers a circle with cells (what matching and locking need),
some need a C compiler, and the whole module is a hundred lines; PostGIS would tie the server to
PostgreSQL, while SQLite must keep working.
"""

from __future__ import annotations

import math
from functools import lru_cache

from server.matching.geo import metres_to_degrees

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
_DECODE = {c: i for i, c in enumerate(_BASE32)}


def _bits(precision: int) -> tuple[int, int]:
    """(longitude bits, latitude bits) of a geohash of ``precision`` characters."""
    total = 5 * precision
    return (total + 1) // 2, total // 2


def cell_size_deg(precision: int) -> tuple[float, float]:
    """(height in degrees of latitude, width in degrees of longitude) of one cell."""
    lon_bits, lat_bits = _bits(precision)
    return 180.0 / (1 << lat_bits), 360.0 / (1 << lon_bits)


def _indices(lat: float, lon: float, precision: int) -> tuple[int, int]:
    lon_bits, lat_bits = _bits(precision)
    lat_n, lon_n = 1 << lat_bits, 1 << lon_bits
    row = min(lat_n - 1, max(0, math.floor((lat + 90.0) / 180.0 * lat_n)))
    col = math.floor((lon + 180.0) / 360.0 * lon_n) % lon_n  # wraps across the antimeridian
    return row, col


def _from_indices(row: int, col: int, precision: int) -> str:
    lon_bits, lat_bits = _bits(precision)
    chars = []
    value = 0
    lon_left, lat_left = lon_bits, lat_bits
    for bit in range(5 * precision):
        if bit % 2 == 0:  # even bits are longitude, most significant first
            lon_left -= 1
            value = (value << 1) | ((col >> lon_left) & 1)
        else:
            lat_left -= 1
            value = (value << 1) | ((row >> lat_left) & 1)
        if bit % 5 == 4:
            chars.append(_BASE32[value])
            value = 0
    return "".join(chars)


def encode(lat: float, lon: float, precision: int) -> str:
    """The geohash of ``(lat, lon)`` with ``precision`` characters."""
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"position ({lat}, {lon}) is outside WGS 84 bounds")
    if not 1 <= precision <= 12:
        raise ValueError(f"geohash precision must be 1..12, got {precision}")
    row, col = _indices(lat, lon, precision)
    return _from_indices(row, col, precision)


def decode_bbox(cell: str) -> tuple[float, float, float, float]:
    """(south, west, north, east) of a geohash cell."""
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    even = True
    for char in cell:
        if char not in _DECODE:
            raise ValueError(f"{cell!r} is not a geohash: {char!r} is not in its alphabet")
        value = _DECODE[char]
        for shift in range(4, -1, -1):
            bit = (value >> shift) & 1
            if even:
                mid = (lon_lo + lon_hi) / 2
                lon_lo, lon_hi = (mid, lon_hi) if bit else (lon_lo, mid)
            else:
                mid = (lat_lo + lat_hi) / 2
                lat_lo, lat_hi = (mid, lat_hi) if bit else (lat_lo, mid)
            even = not even
    return lat_lo, lon_lo, lat_hi, lon_hi


@lru_cache(maxsize=65_536)
def cells_covering(lat: float, lon: float, radius_m: float, precision: int) -> tuple[str, ...]:
    """Every cell that intersects the bounding box of the circle of ``radius_m`` around the point.

    Sorted, without duplicates. Cached: ingest asks for the same event's cells several times
    (locks, preload, candidates), and patrols report the same spots again and again.
    """
    dlat, dlon = metres_to_degrees(lat, radius_m)
    lon_bits, _ = _bits(precision)
    row_lo, col_lo = _indices(max(-90.0, lat - dlat), _wrap(lon - dlon), precision)
    row_hi, col_hi = _indices(min(90.0, lat + dlat), _wrap(lon + dlon), precision)
    lon_n = 1 << lon_bits
    span = (col_hi - col_lo) % lon_n
    cells = {
        _from_indices(row, (col_lo + step) % lon_n, precision)
        for row in range(row_lo, row_hi + 1)
        for step in range(span + 1)
    }
    return tuple(sorted(cells))


def _wrap(lon: float) -> float:
    return ((lon + 180.0) % 360.0) - 180.0

"""Query-string helpers shared by the list endpoints: bounding boxes, sort keys, pages.

Each parser turns one raw query value into a typed value or raises
:class:`QueryError` naming the parameter and what a good value looks like; the
app turns that into a 422 JSON answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlalchemy import ColumnElement
from sqlalchemy.orm import InstrumentedAttribute

from streetwatch.errors import StreetWatchError

#: The largest INTEGER column value on PostgreSQL (case ids, counts, priorities): a larger value
#: in a query would fail in the database, so it is refused as a bad parameter first.
MAX_DB_INT = 2**31 - 1

#: Largest page a client may ask for; bigger pages cost the server memory for little gain.
MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class QueryError(StreetWatchError, ValueError):
    """A query parameter has a value the endpoint cannot use."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class BBox:
    """A WGS 84 bounding box; ``min_lon > max_lon`` is not supported (no antimeridian wrap)."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float


def parse_bbox(raw: str | None) -> BBox | None:
    """``minlon,minlat,maxlon,maxlat`` (the OGC / GeoJSON order) into a :class:`BBox`."""
    if raw is None or raw == "":
        return None
    parts = raw.split(",")
    if len(parts) != 4:
        raise QueryError(
            "bbox", f"expected 4 comma-separated numbers minlon,minlat,maxlon,maxlat, got {raw!r}"
        )
    try:
        min_lon, min_lat, max_lon, max_lat = (float(p) for p in parts)
    except ValueError:
        raise QueryError("bbox", f"every part must be a number, got {raw!r}") from None
    if not all(math.isfinite(v) for v in (min_lon, min_lat, max_lon, max_lat)):
        raise QueryError("bbox", f"numbers must be finite, got {raw!r}")
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise QueryError("bbox", "longitudes must lie in [-180, 180]")
    if not (-90 <= min_lat <= 90 and -90 <= max_lat <= 90):
        raise QueryError("bbox", "latitudes must lie in [-90, 90]")
    if min_lon > max_lon or min_lat > max_lat:
        raise QueryError("bbox", f"min must not exceed max (minlon,minlat,maxlon,maxlat), got {raw!r}")
    return BBox(min_lon, min_lat, max_lon, max_lat)


def bbox_clause(
    bbox: BBox, lat: InstrumentedAttribute[float | None], lon: InstrumentedAttribute[float | None]
) -> ColumnElement[bool]:
    """SQL condition: the point (lat, lon) lies inside ``bbox`` (edges included)."""
    return lat.between(bbox.min_lat, bbox.max_lat) & lon.between(bbox.min_lon, bbox.max_lon)


#: What the ``device_id`` filters say about a trailing ``*``, for their descriptions.
DEVICE_HELP = "Only this box; a trailing * takes every box whose id starts so (d7-* for a depot's vans)."


def device_clause(
    raw: str, column: InstrumentedAttribute[str] | InstrumentedAttribute[str | None]
) -> ColumnElement[bool]:
    """SQL condition: the row's box is ``raw``, or starts with it less a trailing ``*``. Box ids
    have no ``*`` (``DEVICE_ID_PATTERN``), so the star cannot clash with an id; ``_`` in ids is
    matched as itself, not as a LIKE wildcard."""
    if "*" not in raw:
        return column == raw
    prefix = raw[:-1]
    if "*" in prefix:
        raise QueryError("device_id", f"only a trailing * is a wildcard (van-* or d7-van-1*), got {raw!r}")
    if not prefix:
        raise QueryError("device_id", "* alone would take every box: leave device_id out instead")
    return column.startswith(prefix, autoescape=True)


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool


def parse_sort(raw: str | None, allowed: tuple[str, ...], default: str) -> SortKey:
    """``field`` or ``-field`` (descending), checked against ``allowed``."""
    value = raw or default
    descending = value.startswith("-")
    field = value[1:] if descending else value
    if field not in allowed:
        options = ", ".join(f"{f}, -{f}" for f in allowed)
        raise QueryError("sort", f"cannot sort by {field!r}; use one of: {options}")
    return SortKey(field, descending)

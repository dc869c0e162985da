"""No-sign zones: streets and squares where no signboard may hang, whatever it shows.

A sign is illegal where signs may not hang (a heritage street, an intersection's sight lines, a
park), not only when it is unpermitted or changed. A city lists those places as a GeoJSON file
(``signs.no_sign_zones``): a FeatureCollection of Polygon or MultiPolygon features, each with a
``name`` and an optional ``reason``::

    {"type": "FeatureCollection", "features": [{"type": "Feature",
      "properties": {"name": "Hang Dao heritage street", "reason": "no signs over the pavement"},
      "geometry": {"type": "Polygon", "coordinates": [[[105.8510, 21.0330], ...]]}}]}

A signboard sighting whose place lies in a zone opens a "signboard in a no-sign zone" case
(:mod:`server.signs.register`), unless the register knows the sign as permitted there. The place
is the sign's own when the box estimated it, on its side of the road when the box knows its
camera's view: a zone drawn along one side of a street then catches that side's signs only.

    zones = read_zones(Path("no_sign_zones.geojson"))   # ZoneFileError says what is wrong, where
    zone = zone_at(zones, lat, lon)                      # the first zone holding the point, or None
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

from streetwatch.errors import ConfigError

#: A zone file bigger than this is not a list of streets.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_NAME = 100
MAX_REASON = 160

Ring = tuple[tuple[float, float], ...]  # (lon, lat) positions, first == last
Polygon = tuple[Ring, ...]  # the outer ring, then holes


class ZoneFileError(ConfigError, ValueError):
    """The zone file cannot be used; the message names the file, the feature and the problem.

    A :class:`ValueError` too, so that the settings that name the file fail to validate with it."""


@dataclass(frozen=True, slots=True)
class ZoneLabel:
    """What a decision keeps of a zone: its name and why (the polygons may be redrawn later)."""

    name: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SignZone:
    name: str
    reason: str
    polygons: tuple[Polygon, ...]
    bbox: tuple[float, float, float, float]  # min lon, min lat, max lon, max lat

    @property
    def label(self) -> ZoneLabel:
        return ZoneLabel(self.name, self.reason)

    def contains(self, lat: float, lon: float) -> bool:
        """Inside an outer ring and outside its holes (a point on an edge may go either way)."""
        west, south, east, north = self.bbox
        if not (west <= lon <= east and south <= lat <= north):
            return False
        return any(
            _in_ring(polygon[0], lon, lat) and not any(_in_ring(hole, lon, lat) for hole in polygon[1:])
            for polygon in self.polygons
        )


def zone_at(zones: Iterable[SignZone], lat: float, lon: float) -> SignZone | None:
    """The first zone (in file order) that holds the point, or None."""
    return next((zone for zone in zones if zone.contains(lat, lon)), None)


def read_zones(path: Path) -> tuple[SignZone, ...]:
    """Read and check a zone file; :class:`ZoneFileError` on anything unusable."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ZoneFileError(f"no-sign zone file {path} is {size:,} bytes; at most {MAX_FILE_BYTES:,}")
        data = json.loads(path.read_bytes())
    except OSError as exc:
        raise ZoneFileError(f"cannot read the no-sign zone file {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ZoneFileError(f"no-sign zone file {path} is not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise ZoneFileError(f"no-sign zone file {path} must be a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise ZoneFileError(f"no-sign zone file {path}: 'features' must be a list")
    zones = []
    for i, feature in enumerate(features):
        try:
            zones.append(_zone(feature))
        except ValueError as exc:
            raise ZoneFileError(f"no-sign zone file {path}, feature {i}: {exc}") from None
    return tuple(zones)


def _zone(feature: Any) -> SignZone:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise ValueError("not a GeoJSON Feature")
    properties = feature.get("properties") or {}
    name = properties.get("name") if isinstance(properties, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ValueError("needs a 'name' property (the zone's name in case titles)")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise ValueError(f"name {name[:20]!r}... is longer than {MAX_NAME} characters")
    reason = properties.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > MAX_REASON:
        raise ValueError(f"{name!r}: 'reason' must be text of at most {MAX_REASON} characters")
    geometry = feature.get("geometry")
    kind = geometry.get("type") if isinstance(geometry, dict) else None
    coordinates = geometry.get("coordinates") if isinstance(geometry, dict) else None
    polygons: tuple[Polygon, ...]
    if kind == "Polygon":
        polygons = (_polygon(coordinates, name),)
    elif kind == "MultiPolygon" and isinstance(coordinates, list) and coordinates:
        polygons = tuple(_polygon(part, name) for part in coordinates)
    else:
        raise ValueError(f"{name!r}: the geometry must be a Polygon or a MultiPolygon, not {kind!r}")
    positions = [p for polygon in polygons for p in polygon[0]]
    lons, lats = [p[0] for p in positions], [p[1] for p in positions]
    return SignZone(name, reason.strip(), polygons, (min(lons), min(lats), max(lons), max(lats)))


def _polygon(rings: Any, name: str) -> Polygon:
    if not isinstance(rings, list) or not rings:
        raise ValueError(f"{name!r}: a polygon needs at least its outer ring")
    return tuple(_ring(ring, name) for ring in rings)


def _ring(ring: Any, name: str) -> Ring:
    if not isinstance(ring, list) or len(ring) < 4:
        raise ValueError(f"{name!r}: a ring needs at least 4 positions (the first repeated at the end)")
    positions = []
    for position in ring:
        if not isinstance(position, list) or len(position) < 2 or not all(_number(v) for v in position[:2]):
            raise ValueError(f"{name!r}: {position!r} is not a [longitude, latitude] position")
        lon, lat = float(position[0]), float(position[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError(f"{name!r}: [{lon}, {lat}] is not a longitude and latitude (in that order)")
        positions.append((lon, lat))
    if positions[0] != positions[-1]:
        raise ValueError(f"{name!r}: a ring must end where it starts")
    return tuple(positions)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _in_ring(ring: Sequence[tuple[float, float]], x: float, y: float) -> bool:
    """Even-odd rule: a ray to the east crosses the ring's edges an odd number of times."""
    inside = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside

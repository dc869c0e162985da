"""No-sign zone files for tests: GeoJSON written from (lat, lon) corners."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def ring(points: list[tuple[float, float]]) -> list[list[float]]:
    return [[lon, lat] for lat, lon in points]  # GeoJSON: longitude first


def zone_feature(name: str, reason: str, *rings: list[tuple[float, float]]) -> dict[str, Any]:
    """A Polygon zone: its outer ring, then holes, each as closed (lat, lon) corners."""
    geometry = {"type": "Polygon", "coordinates": [ring(r) for r in rings]}
    return {"type": "Feature", "properties": {"name": name, "reason": reason}, "geometry": geometry}


def collection(*features: Any) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def write_zones(folder: Path, *features: Any) -> Path:
    path = folder / "zones.geojson"
    path.write_text(collection(*features))
    return path

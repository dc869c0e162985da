"""Locators that need no GPS: a surveyed fixed camera, and "no position at all"."""

from __future__ import annotations

from datetime import datetime

from streetwatch.events import Position


class FixedLocator:
    """A fixed camera: the same surveyed position (and viewing direction) for every frame."""

    def __init__(self, lat: float, lon: float, *, accuracy_m: float, heading_deg: float | None) -> None:
        self._position = Position(
            lat=lat, lon=lon, accuracy_m=accuracy_m, heading_deg=heading_deg, speed_mps=0.0, source="fixed"
        )

    def position_at(self, when: datetime) -> Position:
        return self._position

    def close(self) -> None:
        """Nothing to release."""


class NoLocator:
    """``location.kind: none``: events carry no position."""

    def position_at(self, when: datetime) -> Position | None:
        return None

    def close(self) -> None:
        """Nothing to release."""

"""Builders of wire messages for server tests and benchmarks."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

from streetwatch.events import ViolationEvent

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
#: A street corner in Shanghai; offsets below are in metres from here.
LAT0, LON0 = 31.2300, 121.4700
M_PER_DEG_LAT = 111_195.0


def offset(north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    import math

    return (
        LAT0 + north_m / M_PER_DEG_LAT,
        LON0 + east_m / (M_PER_DEG_LAT * math.cos(math.radians(LAT0))),
    )


def make_event(
    *,
    device_id: str = "van-01",
    violation_type: str = "garbage_overflow",
    at: datetime = T0,
    north_m: float = 0.0,
    east_m: float = 0.0,
    track_id: uuid.UUID | None = None,
    position: bool = True,
    source: str = "gpx",
    **overrides: Any,
) -> ViolationEvent:
    """An event; ``source``: ``gpx`` / ``nmea`` for a patrol's box, ``fixed`` for a fixed camera."""
    lat, lon = offset(north_m, east_m)
    fields: dict[str, Any] = {
        "event_id": uuid.uuid4(),
        "device_id": device_id,
        "track_id": track_id or uuid.uuid4(),
        "sequence": 0,
        "lifecycle": "new",
        "violation_type": violation_type,
        "candidate": False,
        "detector_class": violation_type,
        "score": 0.8,
        "box": (10.0, 20.0, 110.0, 220.0),
        "frame_width": 640,
        "frame_height": 480,
        "observed_at": at,
        "first_seen_at": at - timedelta(seconds=2),
        "frames_seen": 4,
        "position": {"lat": lat, "lon": lon, "accuracy_m": 3.0, "source": source} if position else None,
        "model": {"name": "streetwatch-det", "version": "1"},
    }
    fields.update(overrides)
    return ViolationEvent.model_validate(fields)

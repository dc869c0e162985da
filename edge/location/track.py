"""Time-indexed fixes and the one rule for turning them into a position at a frame time."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge.location.geo import interpolate, normalise_heading
from streetwatch.events import Position

PositionSource = Literal["fixed", "nmea", "gpx"]


@dataclass(frozen=True)
class Fix:
    """One position report: a GPS epoch (NMEA) or a track point (GPX)."""

    time: datetime
    lat: float
    lon: float
    accuracy_m: float | None = None
    heading_deg: float | None = None
    speed_mps: float | None = None
    altitude_m: float | None = None
    #: Fixes of different segments (GPX ``trkseg``) are never interpolated across.
    segment: int = 0


def to_position(
    fix: Fix, source: PositionSource, *, lat: float | None = None, lon: float | None = None
) -> Position:
    return Position(
        lat=fix.lat if lat is None else lat,
        lon=fix.lon if lon is None else lon,
        accuracy_m=None if fix.accuracy_m is None else max(0.0, fix.accuracy_m),
        heading_deg=None if fix.heading_deg is None else normalise_heading(fix.heading_deg),
        speed_mps=None if fix.speed_mps is None else max(0.0, fix.speed_mps),
        source=source,
    )


def position_between(
    fixes: Sequence[Fix],
    times: Sequence[datetime],
    when: datetime,
    *,
    source: PositionSource,
    max_fix_age_s: float,
    max_gap_s: float,
    motion_from_start: bool,
) -> Position | None:
    """The position at ``when`` from time-sorted ``fixes`` (``times`` are their times, for bisecting).

    Between two fixes of the same segment at most ``max_gap_s`` apart, lat/lon
    are interpolated linearly; heading, speed and accuracy come from the first
    fix of the pair when ``motion_from_start`` (GPX: they describe the segment
    that starts there) or else from the nearer fix (NMEA: measured per fix).
    Otherwise the nearest fix is used if it is at most ``max_fix_age_s`` away
    in time, and else there is no position.
    """
    if not fixes:
        return None
    i = bisect.bisect_right(times, when)
    before = fixes[i - 1] if i > 0 else None
    after = fixes[i] if i < len(fixes) else None
    if before is not None and after is not None and before.segment == after.segment:
        gap = (after.time - before.time).total_seconds()
        if 0 < gap <= max_gap_s:
            fraction = (when - before.time).total_seconds() / gap
            lat, lon = interpolate(before.lat, before.lon, after.lat, after.lon, fraction)
            motion = before if motion_from_start or fraction < 0.5 else after
            return to_position(motion, source, lat=lat, lon=lon)
    candidates = [f for f in (before, after) if f is not None]
    nearest = min(candidates, key=lambda f: abs((f.time - when).total_seconds()))
    if abs((nearest.time - when).total_seconds()) <= max_fix_age_s:
        return to_position(nearest, source)
    return None

"""GPX 1.1 track replay: positions at frame times, interpolated along the recorded track.

Reads ``<trk>/<trkseg>/<trkpt lat lon>`` with ``<time>`` (required), ``<ele>``
and ``<hdop>`` (optional; accuracy = HDOP × 5 m as for NMEA). A minimal file a
dash-cam logger or ``gpsbabel`` writes, and that the images source lines up with
through ``source.start_time``::

    <?xml version="1.0" encoding="UTF-8"?>
    <gpx version="1.1" creator="logger" xmlns="http://www.topografix.com/GPX/1/1">
      <trk><trkseg>
        <trkpt lat="31.2058" lon="121.4794"><ele>4.0</ele><time>2024-05-01T08:00:00Z</time></trkpt>
        <trkpt lat="31.2059" lon="121.4796"><time>2024-05-01T08:00:02Z</time></trkpt>
      </trkseg></trk>
    </gpx>

Between two points of a segment the position is linear in time; the heading
is the bearing of that segment and the speed its length over its duration (a
segment shorter than 1 m keeps the heading of the nearest moving segment: a
parked vehicle still faces somewhere). Gaps between ``<trkseg>`` elements are
not interpolated. Outside the track's time range by more than
``max_fix_age_s`` there is no position.

Parsed with expat (the parser under ``xml.etree``) because its handlers know
the current line, so an error names the file and the line of the bad point.
Why not ``gpxpy`` (checked with 1.6): an unreadable ``<time>`` silently becomes
no time, a longitude of 200 is accepted, and a non-numeric coordinate is an
exception without a line, so every check here would stay around it.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.parsers import expat

from edge.location.geo import bearing_deg, distance_m
from edge.location.nmea import METRES_PER_HDOP
from edge.location.track import Fix, position_between
from streetwatch.errors import LocationError
from streetwatch.events import Position

log = logging.getLogger(__name__)

#: A segment shorter than this is "not moving": its bearing is noise.
_MIN_MOVE_M = 1.0


@dataclass
class _PointDraft:
    line: int
    lat: float
    lon: float
    time: str | None = None
    ele: str | None = None
    hdop: str | None = None


def parse_gpx(data: bytes, name: str = "<gpx>") -> list[list[Fix]]:
    """Track segments of a GPX file as lists of time-sorted fixes (heading/speed not yet filled in).

    Raises :class:`LocationError` naming ``name`` and the line for malformed XML,
    a bad coordinate or time, and for a file with no timed track point.
    """
    segments: list[list[Fix]] = []
    stack: list[str] = []
    current: list[Fix] | None = None
    point: _PointDraft | None = None
    text: list[str] = []
    parser = expat.ParserCreate(namespace_separator=" ")

    def start(tag: str, attrs: dict[str, str]) -> None:
        nonlocal current, point
        local = tag.rsplit(" ", 1)[-1]
        if not stack and local != "gpx":
            raise _BadGpx(f"not a GPX file: the root element is <{local}>, expected <gpx>")
        stack.append(local)
        text.clear()
        if local == "trkseg":
            current = []
            segments.append(current)
        elif local == "trkpt":
            point = _PointDraft(
                line=parser.CurrentLineNumber,
                lat=_coordinate(attrs.get("lat"), "latitude", 90.0),
                lon=_coordinate(attrs.get("lon"), "longitude", 180.0),
            )

    def end(tag: str) -> None:
        nonlocal current, point
        local = stack.pop()
        value = "".join(text).strip()
        text.clear()
        if point is not None and local in ("time", "ele", "hdop") and stack and stack[-1] == "trkpt":
            setattr(point, local, value)
        elif local == "trkpt" and point is not None:
            if current is None:  # a trkpt outside any trkseg (lenient: some writers do this)
                current = []
                segments.append(current)
            current.append(_finish_point(point, segment=len(segments) - 1))
            point = None
        elif local == "trkseg":
            current = None

    def chars(data: str) -> None:
        text.append(data)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = chars
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise LocationError(
            f"{name}:{exc.lineno}: malformed GPX (not well-formed XML): {expat.ErrorString(exc.code)}"
        ) from exc
    except _BadGpx as exc:
        raise LocationError(f"{name}:{parser.CurrentLineNumber}: {exc}") from exc
    cleaned = [_sorted_unique(seg) for seg in segments if seg]
    if not cleaned:
        raise LocationError(f"{name}: no track points (<trk><trkseg><trkpt> with <time>) in this GPX file")
    return cleaned


class _BadGpx(ValueError):
    """Raised inside the expat handlers; turned into a LocationError with the file name and line."""


def _coordinate(raw: str | None, what: str, limit: float) -> float:
    try:
        value = float(raw) if raw is not None else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > limit:
        raise _BadGpx(f"trkpt {what[:3]}={raw!r} is not a valid {what}")
    return value


def _finish_point(point: _PointDraft, *, segment: int) -> Fix:
    if not point.time:
        raise _BadGpx(f"trkpt at line {point.line} has no <time>; a track without times cannot be replayed")
    try:
        when = datetime.fromisoformat(point.time)
    except ValueError as exc:
        raise _BadGpx(f"trkpt at line {point.line}: <time> {point.time!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)  # GPX times are UTC by definition
    ele = _optional_number(point.ele, "ele", point.line)
    hdop = _optional_number(point.hdop, "hdop", point.line)
    return Fix(
        time=when.astimezone(timezone.utc),
        lat=point.lat,
        lon=point.lon,
        altitude_m=ele,
        accuracy_m=None if hdop is None else hdop * METRES_PER_HDOP,
        segment=segment,
    )


def _optional_number(raw: str | None, what: str, line: int) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise _BadGpx(f"trkpt at line {line}: <{what}> {raw!r} is not a number")
    return value


def _sorted_unique(points: list[Fix]) -> list[Fix]:
    out: list[Fix] = []
    for p in sorted(points, key=lambda f: f.time):
        if out and p.time == out[-1].time:
            continue  # a repeated time adds nothing and would divide by zero
        out.append(p)
    return out


def with_motion(segment: list[Fix]) -> list[Fix]:
    """Fill each point's heading and speed with those of the segment leg that starts there."""
    if len(segment) < 2:
        return segment
    legs: list[tuple[float | None, float]] = []
    for a, b in itertools.pairwise(segment):
        dist = distance_m(a.lat, a.lon, b.lat, b.lon)
        seconds = (b.time - a.time).total_seconds()
        heading = bearing_deg(a.lat, a.lon, b.lat, b.lon) if dist >= _MIN_MOVE_M else None
        legs.append((heading, dist / seconds))
    headings = [h for h, _ in legs]
    # Standing still: keep the previous moving heading, or the next one at the start of the track.
    for i in range(1, len(headings)):
        if headings[i] is None:
            headings[i] = headings[i - 1]
    for i in range(len(headings) - 2, -1, -1):
        if headings[i] is None:
            headings[i] = headings[i + 1]
    legs = [(h, s) for h, (_, s) in zip(headings, legs, strict=True)]
    legs.append(legs[-1])  # the last point continues its incoming leg
    return [replace(p, heading_deg=h, speed_mps=s) for p, (h, s) in zip(segment, legs, strict=True)]


class GpxLocator:
    """Positions from a recorded GPX track, at frame times (shifted by ``time_offset_s``)."""

    def __init__(self, path: str | Path, *, max_fix_age_s: float = 5.0, time_offset_s: float = 0.0) -> None:
        self.path = Path(path)
        try:
            data = self.path.read_bytes()
        except FileNotFoundError as exc:
            raise LocationError(f"GPX file {self.path} does not exist (location.path)") from exc
        except OSError as exc:
            raise LocationError(f"cannot read GPX file {self.path}: {exc}") from exc
        shift = timedelta(seconds=time_offset_s)
        fixes: list[Fix] = []
        for segment in parse_gpx(data, str(self.path)):
            fixes += [replace(f, time=f.time + shift) for f in with_motion(segment)]
        fixes.sort(key=lambda f: f.time)
        self.fixes = fixes
        self._times = [f.time for f in fixes]
        self._max_age = max_fix_age_s
        log.info(
            "GPX track %s: %d points from %s to %s", self.path, len(fixes), fixes[0].time, fixes[-1].time
        )

    @property
    def start(self) -> datetime:
        return self.fixes[0].time

    @property
    def end(self) -> datetime:
        return self.fixes[-1].time

    def position_at(self, when: datetime) -> Position | None:
        return position_between(
            self.fixes,
            self._times,
            when,
            source="gpx",
            max_fix_age_s=self._max_age,
            max_gap_s=math.inf,
            motion_from_start=True,
        )

    def close(self) -> None:
        """Nothing to release: the track is read once, at construction."""

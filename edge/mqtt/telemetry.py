"""What the pipeline tells the sink between events: frames processed and where the camera was.

The pipeline calls :meth:`TelemetryRecorder.note_frame` once per processed frame and
:meth:`TelemetryRecorder.note_position` whenever it has a fix; both are cheap and
thread-safe. The sink's reporter thread takes a snapshot every
``telemetry_interval_s`` and publishes it on ``.../telemetry``.

The track is thinned as it is recorded (a point is kept when the camera moved
``min_distance_m`` or ``min_interval_s`` passed since the last kept one) and bounded,
so a box offline for a day holds a few thousand points, not a million. While the
link is down the track keeps growing and goes out with the next report.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from streetwatch.events import Position
from streetwatch.geo import distance_m
from streetwatch.messages import CoveragePoint, TruckLoadCounts


@dataclass(frozen=True)
class TelemetrySnapshot:
    period_s: float
    frames: int
    coverage: list[CoveragePoint]
    coverage_overflow: int  # points lost because the track hit max_points
    truck_load: TruckLoadCounts | None = None  # cumulative since the box started; None: no load stage


class TelemetryRecorder:
    def __init__(
        self,
        *,
        min_distance_m: float = 25.0,
        min_interval_s: float = 30.0,
        max_points: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_distance_m = min_distance_m
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._lock = threading.Lock()
        self._frames = 0
        self._since = clock()
        self._track: collections.deque[CoveragePoint] = collections.deque(maxlen=max_points)
        self._overflow = 0
        self._last_kept: CoveragePoint | None = None
        self._truck_load: Callable[[], TruckLoadCounts] | None = None

    def count_trucks_with(self, counts: Callable[[], TruckLoadCounts]) -> None:
        """Report what the truck load stage decided (``counts`` is read at each snapshot)."""
        self._truck_load = counts

    def note_frame(self, count: int = 1) -> None:
        """One more processed frame (the pipeline's fps comes from these)."""
        with self._lock:
            self._frames += count

    def note_position(self, position: Position, at: datetime) -> None:
        """Where the camera was at ``at`` (UTC); thinned to a coverage track."""
        point = CoveragePoint(lat=position.lat, lon=position.lon, at=at, heading=position.heading_deg)
        with self._lock:
            last = self._last_kept
            if last is not None:
                moved = distance_m(last.lat, last.lon, point.lat, point.lon)
                waited = (point.at - last.at).total_seconds()
                if moved < self.min_distance_m and 0 <= waited < self.min_interval_s:
                    return
            if len(self._track) == self._track.maxlen:
                self._overflow += 1
            self._track.append(point)
            self._last_kept = point

    def snapshot(self) -> TelemetrySnapshot:
        """What happened since the previous snapshot; the counters start over."""
        with self._lock:
            now = self._clock()
            snap = TelemetrySnapshot(
                period_s=max(0.0, now - self._since),
                frames=self._frames,
                coverage=list(self._track),
                coverage_overflow=self._overflow,
                truck_load=self._truck_load() if self._truck_load is not None else None,
            )
            self._frames = 0
            self._since = now
            self._track.clear()
            self._overflow = 0
        return snap

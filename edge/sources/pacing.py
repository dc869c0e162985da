"""``fps_limit``: drop frames so the kept ones are at least ``1 / fps_limit`` seconds apart.

The spacing is measured on frame timestamps, not on the wall clock, so a replay
drops the same frames however fast it is read.
"""

from __future__ import annotations

from datetime import datetime, timedelta


class FrameRateLimiter:
    """``keep(ts)`` says whether a frame taken at ``ts`` should be passed on.

    >>> from datetime import datetime, timedelta, timezone
    >>> t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    >>> limiter = FrameRateLimiter(10)  # at most 10 frames a second
    >>> [limiter.keep(t0 + timedelta(seconds=i / 25)) for i in range(6)]
    [True, False, False, True, False, True]
    """

    # Frames a hair early still count: timestamps from containers carry rounding noise.
    _TOLERANCE = 0.02

    def __init__(self, fps_limit: float | None) -> None:
        self._gap = None if fps_limit is None else 1.0 / fps_limit
        self._due: datetime | None = None  # earliest time of the next kept frame
        self._last: datetime | None = None

    def keep(self, timestamp: datetime) -> bool:
        if self._gap is None:
            return True
        gap = timedelta(seconds=self._gap)
        if self._last is not None and timestamp < self._last:
            self._due = None  # the timeline restarted (a looped replay): start over
        self._last = timestamp
        if self._due is not None and timestamp < self._due - gap * self._TOLERANCE:
            return False
        # Keep a steady cadence (not "gap after the last kept frame", which would undershoot the
        # limit), but never try to catch up after a stall.
        on_time = self._due is not None and timestamp - self._due <= gap
        self._due = (self._due if on_time and self._due is not None else timestamp) + gap
        return True

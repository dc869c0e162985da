"""Replay of an NMEA log file: positions indexed by the NMEA (GPS) time of each epoch."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from edge.location.nmea import parse_nmea
from edge.location.track import position_between
from streetwatch.errors import LocationError
from streetwatch.events import Position

log = logging.getLogger(__name__)


class NmeaFileLocator:
    """Positions from a recorded NMEA 0183 log (GGA/RMC), shifted by ``time_offset_s``.

    Between two fixes at most ``2 × max_fix_age_s`` apart the position is
    interpolated; heading and speed are those the receiver measured at the
    nearer fix. A longer gap (lost signal, void fixes) is not bridged.
    """

    def __init__(self, path: str | Path, *, max_fix_age_s: float = 5.0, time_offset_s: float = 0.0) -> None:
        self.path = Path(path)
        try:
            text = self.path.read_bytes().decode("ascii", errors="replace")
        except FileNotFoundError as exc:
            raise LocationError(f"NMEA file {self.path} does not exist (location.path)") from exc
        except OSError as exc:
            raise LocationError(f"cannot read NMEA file {self.path}: {exc}") from exc
        fixes, self.stats = parse_nmea(text.splitlines())
        if not fixes:
            raise LocationError(f"NMEA file {self.path} holds no usable fix ({self.stats.summary()})")
        shift = timedelta(seconds=time_offset_s)
        self.fixes = sorted((replace(f, time=f.time + shift) for f in fixes), key=lambda f: f.time)
        self._times = [f.time for f in self.fixes]
        self._max_age = max_fix_age_s
        skipped = self.stats.garbage + self.stats.bad_checksum + self.stats.void + self.stats.undated
        (log.warning if skipped else log.info)("NMEA file %s: %s", self.path, self.stats.summary())

    def position_at(self, when: datetime) -> Position | None:
        return position_between(
            self.fixes,
            self._times,
            when,
            source="nmea",
            max_fix_age_s=self._max_age,
            max_gap_s=2 * self._max_age,
            motion_from_start=False,
        )

    def close(self) -> None:
        """Nothing to release: the log is read once, at construction."""

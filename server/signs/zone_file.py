"""The no-sign zone file, read again when it changes: a city adds a zone without a server restart.

A bureau designates a heritage street on a Tuesday; the operator edits ``signs.no_sign_zones``
(after checking it with ``streetwatch signs zones FILE``) and every ingest worker and API server
picks the new zones up on its next signboard sighting or map request, within
``signs.no_sign_zones_check_s`` of the change (one stat call per interval at most). A changed
file that cannot be used (half-written, a wrong coordinate order, gone) does not stop ingest: the
error is logged once per change of the file, the zones read before stay in force, and
:attr:`ZoneFile.problem` says so (``GET /api/v1/signs/zones`` shows it). Only the first read, at
start, is fatal: a server must not start without the zones it was told to enforce.

    zones = ZoneFile(Path("no_sign_zones.geojson"))   # ZoneFileError here stops the settings
    zone_at(zones.current(), lat, lon)                 # re-read when the file changed
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from server.signs.zones import SignZone, ZoneFileError, read_zones

log = logging.getLogger(__name__)

Stamp = tuple[int, int, int] | None  # (mtime_ns, size, inode); None: the file is not there


def _stamp(path: Path) -> Stamp:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


class ZoneFile:
    """The zones of one file, as of its last good read (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        check_every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._check_every_s = check_every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp = _stamp(path)
        self._zones = read_zones(path)  # the first read is fatal: ZoneFileError
        self._read_at = datetime.now(timezone.utc)
        self._checked = clock()
        self._problem: str | None = None

    def current(self) -> tuple[SignZone, ...]:
        """The zones in force: the file's, read again if it changed since the last look."""
        if self._clock() - self._checked < self._check_every_s:
            return self._zones
        with self._lock:
            self._checked = self._clock()
            stamp = _stamp(self.path)
            if stamp != self._stamp:
                self._stamp = stamp  # one attempt (and one log line) per change of the file
                self._reread()
            return self._zones

    def _reread(self) -> None:
        try:
            zones = read_zones(self.path)
        except ZoneFileError as exc:
            self._problem = (
                f"{exc}; the {len(self._zones)} zone(s) read at {self._read_at:%Y-%m-%d %H:%M:%S} UTC "
                "stay in force"
            )
            log.error("signs: %s", self._problem)
            return
        log.info(
            "signs: %s changed: %d no-sign zone(s) now (were %d)", self.path, len(zones), len(self._zones)
        )
        self._zones, self._problem = zones, None
        self._read_at = datetime.now(timezone.utc)

    @property
    def read_at(self) -> datetime:
        """When the zones in force were read."""
        return self._read_at

    @property
    def problem(self) -> str | None:
        """Why the file's latest change is not in force; None when it is."""
        return self._problem

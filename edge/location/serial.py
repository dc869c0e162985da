"""NMEA 0183 from a serial GPS receiver (``/dev/ttyUSB0``, ``/dev/ttyACM0``...), read in a background thread.

pyserial is not an edge dependency: the device is configured with ``termios``
(raw 8N1 at ``baudrate``) and read as a file descriptor. Fixes are indexed by
the box's clock when they arrive, not by the GPS time inside them: frames of
live sources are stamped with the same clock, so positions line up even on a
box whose clock is wrong (no RTC, no network yet); a difference of more than a
few seconds between the two is logged once, as a hint to sync the clock from
GPS. If the device disappears (unplugged), the reader logs it once and keeps
trying to reopen it; positions simply age out meanwhile.
"""

from __future__ import annotations

import logging
import os
import select
import termios
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

from edge.location.nmea import NmeaFixAssembler, NmeaStats
from edge.location.track import Fix, position_between
from streetwatch.errors import LocationError
from streetwatch.events import Position

log = logging.getLogger(__name__)

#: Fixes kept for lookups (an hour at 1 Hz); frames older than this get no position anyway.
_HISTORY = 3600
#: A partial line longer than this without a newline is garbage (wrong baud rate, binary protocol).
_MAX_LINE = 1024
_CLOCK_SKEW_WARN_S = 2.0
_REOPEN_MAX_S = 30.0


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def configure_tty(fd: int, baudrate: int) -> None:
    """Raw 8N1 input at ``baudrate``: no echo, no line editing, no CR/LF translation."""
    speed = getattr(termios, f"B{baudrate}", None)
    if speed is None:
        raise LocationError(f"serial speed {baudrate} is not supported by this system (location.baudrate)")
    iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(fd)
    iflag &= ~(
        termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR | termios.IGNCR
    )
    iflag &= ~(termios.ICRNL | termios.IXON)
    oflag &= ~termios.OPOST
    lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN)
    cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB)
    cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
    termios.tcsetattr(fd, termios.TCSANOW, [iflag, oflag, cflag, lflag, speed, speed, cc])


def _nearest_date(clock: Callable[[], datetime]) -> Callable[[time], date]:
    """For GGA-only receivers: the date that puts the time of day closest to now."""

    def pick(time_of_day: time) -> date:
        now = clock()
        days = [now.date() + timedelta(days=d) for d in (-1, 0, 1)]
        return min(
            days,
            key=lambda d: abs((datetime.combine(d, time_of_day, tzinfo=timezone.utc) - now).total_seconds()),
        )

    return pick


class NmeaSerialLocator:
    """Live positions from a serial NMEA receiver."""

    def __init__(
        self,
        path: str | Path,
        *,
        baudrate: int = 9600,
        max_fix_age_s: float = 5.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.path = Path(path)
        self.baudrate = baudrate
        self._max_age = max_fix_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._fixes: deque[Fix] = deque(maxlen=_HISTORY)
        self._assembler = NmeaFixAssembler(fallback_date=_nearest_date(clock))
        self._skew_warned = False
        self._stop = threading.Event()
        if not self.path.exists():
            raise LocationError(
                f"GPS device {self.path} does not exist (location.path); is the receiver plugged in?"
            )
        self._fd: int | None = self._open()
        self._thread = threading.Thread(target=self._run, name=f"nmea-{self.path.name}", daemon=True)
        self._thread.start()

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise LocationError(f"cannot open GPS device {self.path}: {exc.strerror}") from exc
        try:
            configure_tty(fd, self.baudrate)
        except (termios.error, LocationError) as exc:
            os.close(fd)
            if isinstance(exc, LocationError):
                raise
            raise LocationError(f"{self.path} is not a serial device that can be configured: {exc}") from exc
        return fd

    @property
    def stats(self) -> NmeaStats:
        """A copy of the counts of lines, fixes and skipped garbage so far."""
        with self._lock:
            return replace(self._assembler.stats)

    def _run(self) -> None:
        buffer = b""
        wait = 1.0
        while not self._stop.is_set():
            if self._fd is None:
                if self._stop.wait(wait):
                    break
                # Reset only once data flows again, so a device that opens but fails at once backs off too.
                wait = min(wait * 2, _REOPEN_MAX_S)
                try:
                    self._fd = self._open()
                except LocationError:
                    continue
                log.info("GPS device %s is back", self.path)
                buffer = b""
            fd = self._fd
            try:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                chunk = os.read(fd, 4096)
            except BlockingIOError:
                continue
            except OSError as exc:
                self._lost(exc.strerror or str(exc))
                continue
            if not chunk:
                self._lost("end of file")
                continue
            wait = 1.0  # data flows again: a later loss starts the backoff afresh
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            if len(buffer) > _MAX_LINE:
                lines.append(buffer)  # counted as garbage by the parser
                buffer = b""
            for raw in lines:
                self._feed(raw.decode("ascii", errors="replace"))

    def _lost(self, why: str) -> None:
        log.warning("GPS device %s lost (%s); trying to reopen it", self.path, why)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _feed(self, line: str) -> None:
        with self._lock:
            fixes = self._assembler.feed(line)
            if not fixes:
                return
            now = self._clock()
            for fix in fixes:
                skew = (fix.time - now).total_seconds()
                if abs(skew) > _CLOCK_SKEW_WARN_S and not self._skew_warned:
                    self._skew_warned = True
                    log.warning(
                        "GPS time and this box's clock differ by %.1f s; positions are matched by arrival "
                        "time, but event times follow the box's clock: sync it (e.g. chrony with gpsd)",
                        skew,
                    )
                self._fixes.append(replace(fix, time=now))

    def position_at(self, when: datetime) -> Position | None:
        with self._lock:
            fixes = list(self._fixes)
        return position_between(
            fixes,
            [f.time for f in fixes],
            when,
            source="nmea",
            max_fix_age_s=self._max_age,
            max_gap_s=2 * self._max_age,
            motion_from_start=False,
        )

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

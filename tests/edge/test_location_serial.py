"""The serial NMEA reader on a real pseudo-terminal pair (the device side of a USB GPS)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from functools import reduce
from pathlib import Path

import pytest

from edge.config import LocationConfig
from edge.location import NmeaSerialLocator, open_locator
from streetwatch.errors import LocationError


def nmea(body: str) -> bytes:
    return f"${body}*{reduce(lambda acc, ch: acc ^ ord(ch), body, 0):02X}\r\n".encode()


def epoch(now: datetime, lat_min: str = "12.0000") -> bytes:
    hhmmss = now.strftime("%H%M%S")
    ddmmyy = now.strftime("%d%m%y")
    return nmea(f"GPGGA,{hhmmss}.00,31{lat_min},N,12128.0000,E,1,09,0.8,12.5,M,8.9,M,,") + nmea(
        f"GPRMC,{hhmmss}.00,A,31{lat_min},N,12128.0000,E,5.0,45.0,{ddmmyy},,,A"
    )


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    try:
        yield master, os.ttyname(slave)
    finally:
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_reads_fixes_from_a_serial_device(pty_pair: tuple[int, str]) -> None:
    master, path = pty_pair
    loc = open_locator(LocationConfig(kind="nmea_serial", path=path, baudrate=9600, max_fix_age_s=3))
    assert isinstance(loc, NmeaSerialLocator)
    try:
        assert loc.position_at(datetime.now(timezone.utc)) is None  # nothing received yet
        os.write(master, b"\xff\xfegarbage at power-on\r\n" + nmea("GPGSV,1,1,01,03,03,111,00"))
        now = datetime.now(timezone.utc)
        # One epoch written in two pieces, split mid-sentence, as a serial port delivers it.
        data = epoch(now)
        os.write(master, data[:30])
        time.sleep(0.05)
        os.write(master, data[30:])
        assert wait_for(lambda: loc.stats.fixes == 1)
        pos = loc.position_at(datetime.now(timezone.utc))
        assert pos is not None and pos.source == "nmea"
        assert pos.lat == pytest.approx(31.2) and pos.lon == pytest.approx(121 + 28 / 60)
        assert pos.accuracy_m == pytest.approx(4.0) and pos.heading_deg == 45.0
        assert pos.speed_mps == pytest.approx(5 * 1852 / 3600)
        stats = loc.stats
        assert (stats.garbage, stats.ignored) == (1, 1)
    finally:
        loc.close()


def test_fixes_are_matched_by_arrival_time_and_age_out(pty_pair: tuple[int, str], caplog) -> None:
    master, path = pty_pair
    loc = NmeaSerialLocator(path, max_fix_age_s=1.0)
    try:
        # A receiver reporting 2019 while the box's clock says today: matched by arrival, warned once.
        with caplog.at_level(logging.WARNING):
            os.write(master, epoch(datetime(2019, 6, 1, 12, 0, tzinfo=timezone.utc)))
            os.write(master, epoch(datetime(2019, 6, 1, 12, 0, 1, tzinfo=timezone.utc), lat_min="12.0010"))
            assert wait_for(lambda: loc.stats.fixes == 2)
        assert loc.position_at(datetime.now(timezone.utc)) is not None
        assert sum("differ by" in r.getMessage() for r in caplog.records) == 1
        time.sleep(1.2)
        assert loc.position_at(datetime.now(timezone.utc)) is None  # older than max_fix_age_s
    finally:
        loc.close()


def test_device_unplugged_is_logged_once_and_close_returns(pty_pair: tuple[int, str], caplog) -> None:
    master, path = pty_pair
    loc = NmeaSerialLocator(path)
    with caplog.at_level(logging.WARNING):
        os.close(master)  # the far end goes away: reads fail with EIO
        assert wait_for(lambda: any("lost" in r.getMessage() for r in caplog.records))
        started = time.monotonic()
        loc.close()
    assert time.monotonic() - started < 2.5
    assert sum("lost" in r.getMessage() for r in caplog.records) == 1


def test_missing_or_unusable_devices_are_clear_errors(tmp_path: Path, pty_pair: tuple[int, str]) -> None:
    with pytest.raises(LocationError, match=r"/dev/ttyUSB97 does not exist"):
        NmeaSerialLocator("/dev/ttyUSB97")
    regular = tmp_path / "not-a-tty"
    regular.write_text("$GPGGA")
    with pytest.raises(LocationError, match="not a serial device"):
        NmeaSerialLocator(regular)
    with pytest.raises(LocationError, match="serial speed 12345"):
        NmeaSerialLocator(pty_pair[1], baudrate=12345)

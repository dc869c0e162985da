"""NMEA 0183 parsing on real-format sentences, garbage, void fixes, and file replay."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone
from functools import reduce
from pathlib import Path

import pytest

from edge.config import LocationConfig
from edge.location import FixedLocator, NmeaFileLocator, NoLocator, open_locator, parse_nmea, parse_sentence
from edge.location.nmea import GgaSentence, NmeaChecksumError, NmeaSentenceError, RmcSentence
from streetwatch.errors import LocationError

T0 = datetime(2024, 5, 1, 8, 15, tzinfo=timezone.utc)


def nmea(body: str) -> str:
    """A sentence with its checksum, computed here independently of the code under test."""
    return f"${body}*{reduce(lambda acc, ch: acc ^ ord(ch), body, 0):02X}\r\n"


def gga(
    hhmmss: str, lat: str = "3112.0000,N", lon: str = "12128.0000,E", quality: int = 1, hdop: str = "0.9"
) -> str:
    return nmea(f"GPGGA,{hhmmss}.00,{lat},{lon},{quality},09,{hdop},12.5,M,8.9,M,,")


def rmc(
    hhmmss: str,
    lat: str = "3112.0000,N",
    lon: str = "12128.0000,E",
    status: str = "A",
    knots: str = "10.0",
    course: str = "87.5",
    ddmmyy: str = "010524",
) -> str:
    return nmea(f"GNRMC,{hhmmss}.00,{status},{lat},{lon},{knots},{course},{ddmmyy},,,A")


def test_textbook_sentences_with_their_published_checksums() -> None:
    g = parse_sentence("$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47")
    assert isinstance(g, GgaSentence) and g.valid
    assert g.lat == pytest.approx(48 + 7.038 / 60) and g.lon == pytest.approx(11 + 31.0 / 60)
    assert (g.quality, g.satellites, g.hdop, g.altitude_m) == (1, 8, 0.9, 545.4)
    r = parse_sentence("$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A")
    assert isinstance(r, RmcSentence) and r.valid
    assert r.date == date(1994, 3, 23)
    assert r.speed_mps == pytest.approx(22.4 * 1852 / 3600)
    assert r.course_deg == 84.4


def test_southern_and_western_hemispheres_are_negative() -> None:
    s = parse_sentence(gga("081500", lat="3352.1234,S", lon="15112.5000,W"))
    assert isinstance(s, GgaSentence)
    assert s.lat == pytest.approx(-(33 + 52.1234 / 60)) and s.lon == pytest.approx(-(151 + 12.5 / 60))


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("GPGGA,081500.00,3112.0000,N*00", NmeaSentenceError),  # no '$'
        ("$GPGGA,081500.00,3112.0000,N,12128.0000,E,1,09,0.9,12.5,M,8.9,M,,", NmeaChecksumError),
        (gga("081500").replace("3112.0000", "3112.0001"), NmeaChecksumError),  # a flipped digit
        (gga("081500").strip()[:-2] + "ZZ", NmeaChecksumError),
        (nmea("GPGGA,0815xx.00,3112.0000,N,12128.0000,E,1,09,0.9,,M,,M,,"), NmeaSentenceError),
        (nmea("GPGGA,081500.00,9112.0000,N,12128.0000,E,1,09,0.9,,M,,M,,"), NmeaSentenceError),
        (nmea("GPGGA,081500.00,3112.0000,Q,12128.0000,E,1,09,0.9,,M,,M,,"), NmeaSentenceError),
        (nmea("GPRMC,081500.00,X,3112.0000,N,12128.0000,E,1.0,2.0,010524,,,A"), NmeaSentenceError),
        (nmea("GPRMC,081500.00,A,3112.0000,N,12128.0000,E,1.0,2.0,310224,,,A"), NmeaSentenceError),  # 31 Feb
        (nmea("GPGGA,081500.00"), NmeaSentenceError),
    ],
)
def test_bad_lines_raise_typed_errors(line: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_sentence(line)


def test_other_sentence_types_are_ignored() -> None:
    assert parse_sentence(nmea("GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00")) is None


def test_a_stream_with_garbage_becomes_fixes_and_counts() -> None:
    lines = [
        "3,M,8.9,M,,*47",  # the tail of a line the reader joined halfway
        gga("081500", hdop="1.2"),
        rmc("081500", knots="10.0", course="87.5"),
        nmea("GPGSV,3,1,11,03,03,111,00"),
        "\x00\xff\xfe binary noise",
        gga("081501", lat="3112.0010,N"),
        gga("081502").replace("*", "*F"),  # corrupted checksum field
        rmc("081501", lat="3112.0010,N", knots="0.0", course=""),
        gga("081502", quality=0, lat=",", lon=","),  # no fix yet
        rmc("081502", status="V", lat=",", lon=",", knots="", course=""),
        "",
        rmc("081503"),  # RMC only: a fix without accuracy
    ]
    fixes, stats = parse_nmea(lines)
    assert [f.time for f in fixes] == [T0, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3)]
    first = fixes[0]
    assert (first.lat, first.lon) == (pytest.approx(31.2), pytest.approx(121 + 28 / 60))
    assert first.accuracy_m == pytest.approx(1.2 * 5)
    assert first.speed_mps == pytest.approx(10 * 1852 / 3600)
    assert first.heading_deg == 87.5
    assert first.altitude_m == 12.5
    assert fixes[1].lat == pytest.approx(31 + 12.001 / 60) and fixes[1].heading_deg is None
    assert fixes[1].speed_mps == 0.0
    assert fixes[2].accuracy_m is None and fixes[2].speed_mps == pytest.approx(10 * 1852 / 3600)
    assert (stats.fixes, stats.void, stats.bad_checksum, stats.garbage, stats.ignored) == (3, 2, 1, 2, 1)
    assert stats.lines == 11


def test_gga_only_needs_a_date_from_an_rmc_and_handles_midnight() -> None:
    fixes, stats = parse_nmea([gga("235958")])
    assert fixes == [] and stats.undated == 1
    fixes, stats = parse_nmea([rmc("235958", ddmmyy="300424"), gga("235959"), gga("000000"), gga("000001")])
    assert [f.time for f in fixes] == [
        datetime(2024, 4, 30, 23, 59, 58, tzinfo=timezone.utc),
        datetime(2024, 4, 30, 23, 59, 59, tzinfo=timezone.utc),
        datetime(2024, 5, 1, 0, 0, 0, tzinfo=timezone.utc),
        datetime(2024, 5, 1, 0, 0, 1, tzinfo=timezone.utc),
    ]


def test_random_bytes_never_crash_the_parser() -> None:
    rng = random.Random(7)
    alphabet = "$*,.0123456789ABCDEFGNPRMSVWE\r\x00é"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90))) for _ in range(2000)]
    lines += [gga("081500")[: rng.randint(0, 60)] for _ in range(200)]
    fixes, stats = parse_nmea(lines)
    assert stats.garbage + stats.bad_checksum > 2000
    assert fixes == []


def write_log(path: Path, seconds: int, *, start_lat_min: float = 12.0) -> None:
    lines = []
    for s in range(seconds):
        hhmmss = f"0815{s:02d}"
        lat = f"31{start_lat_min + s * 0.001:07.4f},N"
        lines += [gga(hhmmss, lat=lat), rmc(hhmmss, lat=lat, course="10.0")]
    path.write_text("".join(lines))


def test_nmea_file_replay_interpolates_between_epochs(tmp_path: Path) -> None:
    log = tmp_path / "drive.nmea"
    write_log(log, 10)
    loc = open_locator(LocationConfig(kind="nmea_file", path=str(log), max_fix_age_s=2))
    assert isinstance(loc, NmeaFileLocator) and loc.stats.fixes == 10
    pos = loc.position_at(T0 + timedelta(seconds=2.5))
    assert pos is not None and pos.source == "nmea"
    assert pos.lat == pytest.approx(31 + 12.0025 / 60)
    assert pos.heading_deg == 10.0 and pos.accuracy_m == pytest.approx(4.5)
    assert loc.position_at(T0 + timedelta(seconds=9 + 1.5)) is not None
    assert loc.position_at(T0 + timedelta(seconds=9 + 2.5)) is None
    assert loc.position_at(T0 - timedelta(seconds=3)) is None


def test_nmea_file_does_not_bridge_a_long_outage(tmp_path: Path) -> None:
    log = tmp_path / "outage.nmea"
    lines = [gga("081500"), rmc("081500")]
    lines += [rmc(f"0815{s:02d}", status="V", lat=",", lon=",", knots="", course="") for s in range(1, 30)]
    lines += [gga("081530"), rmc("081530")]
    log.write_text("".join(lines))
    loc = NmeaFileLocator(log, max_fix_age_s=5)
    assert loc.stats.void == 29
    assert loc.position_at(T0 + timedelta(seconds=15)) is None
    assert loc.position_at(T0 + timedelta(seconds=4)) is not None


def test_nmea_file_time_offset(tmp_path: Path) -> None:
    log = tmp_path / "drive.nmea"
    write_log(log, 3)
    loc = NmeaFileLocator(log, time_offset_s=-60)
    assert loc.position_at(T0 - timedelta(seconds=59)) is not None
    assert loc.position_at(T0 + timedelta(seconds=1)) is None


def test_nmea_file_errors(tmp_path: Path) -> None:
    with pytest.raises(LocationError, match="does not exist"):
        NmeaFileLocator(tmp_path / "none.nmea")
    junk = tmp_path / "junk.nmea"
    junk.write_text("hello\n" + gga("081500").replace("*", "*0") + rmc("081501", status="V"))
    with pytest.raises(LocationError, match=r"junk\.nmea holds no usable fix .*1 bad checksums, 1 garbage"):
        NmeaFileLocator(junk)


def test_fixed_and_no_locator() -> None:
    fixed = open_locator(LocationConfig(kind="fixed", lat=31.23, lon=121.47, accuracy_m=2, heading_deg=270))
    assert isinstance(fixed, FixedLocator)
    pos = fixed.position_at(T0)
    assert (pos.lat, pos.lon, pos.accuracy_m, pos.heading_deg, pos.speed_mps, pos.source) == (
        31.23,
        121.47,
        2.0,
        270.0,
        0.0,
        "fixed",
    )
    none = open_locator(LocationConfig())
    assert isinstance(none, NoLocator) and none.position_at(T0) is None

"""GPX track replay: interpolation, heading, speed, segments, and malformed files."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from edge.config import LocationConfig
from edge.location import GpxLocator, open_locator, parse_gpx
from edge.location.geo import bearing_deg, distance_m
from streetwatch.errors import LocationError

DRIVE = Path(__file__).parent / "data" / "location" / "drive.gpx"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
METRES_PER_DEG_LAT = distance_m(0, 0, 1, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def gpx(points: str, *, ns: str = 'xmlns="http://www.topografix.com/GPX/1/1"') -> bytes:
    head = f'<?xml version="1.0"?>\n<gpx version="1.1" {ns}>\n<trk><trkseg>\n'
    return (head + points + "\n</trkseg></trk>\n</gpx>\n").encode()


@pytest.fixture
def locator() -> GpxLocator:
    loc = open_locator(LocationConfig(kind="gpx", path=str(DRIVE), max_fix_age_s=5))
    assert isinstance(loc, GpxLocator)
    return loc


def test_points_and_segments_are_read(locator: GpxLocator) -> None:
    segments = parse_gpx(DRIVE.read_bytes(), "drive.gpx")
    assert [len(s) for s in segments] == [5, 2]
    first = segments[0][0]
    assert (first.lat, first.lon, first.altitude_m, first.time) == (31.2, 121.4, 4.0, T0)
    assert first.accuracy_m == pytest.approx(0.8 * 5)
    assert locator.start == T0 and locator.end == at(65)


def test_interpolates_position_at_frame_times(locator: GpxLocator) -> None:
    pos = locator.position_at(at(1))  # halfway along the first leg north
    assert pos is not None and pos.source == "gpx"
    assert pos.lat == pytest.approx(31.20005, abs=1e-9)
    assert pos.lon == pytest.approx(121.4, abs=1e-9)
    pos = locator.position_at(at(5))  # a quarter along the leg east
    assert pos is not None
    assert pos.lat == pytest.approx(31.2002, abs=1e-9)
    assert pos.lon == pytest.approx(121.40005, abs=1e-9)


def test_heading_and_speed_come_from_the_segment(locator: GpxLocator) -> None:
    north = locator.position_at(at(0.5))
    east = locator.position_at(at(6))
    assert north is not None and east is not None
    assert north.heading_deg == pytest.approx(0.0, abs=0.01)
    assert north.speed_mps == pytest.approx(0.0001 * METRES_PER_DEG_LAT / 2, rel=1e-3)  # ~5.6 m/s
    assert east.heading_deg == pytest.approx(90.0, abs=0.01)
    expected_east = distance_m(31.2002, 121.4, 31.2002, 121.4002) / 4
    assert east.speed_mps == pytest.approx(expected_east, rel=1e-6)
    assert east.speed_mps != pytest.approx(north.speed_mps, rel=0.05)  # legs differ: per-segment, not global


def test_parked_vehicle_keeps_its_last_heading_with_zero_speed(locator: GpxLocator) -> None:
    parked = locator.position_at(at(10))
    assert parked is not None
    assert parked.speed_mps == 0.0
    assert parked.heading_deg == pytest.approx(90.0, abs=0.01)


def test_outside_the_track_and_across_segment_gaps(locator: GpxLocator) -> None:
    before = locator.position_at(at(-3))  # within max_fix_age_s of the first point: clamped to it
    assert before is not None and before.lat == 31.2
    assert locator.position_at(at(-6)) is None
    assert locator.position_at(at(65 + 4)) is not None
    assert locator.position_at(at(65 + 6)) is None
    assert locator.position_at(at(14)) is not None  # 2 s after the end of segment 1
    assert locator.position_at(at(35)) is None  # in the gap between the segments: not bridged
    second = locator.position_at(at(62.5))
    assert second is not None and second.heading_deg == pytest.approx(180.0, abs=0.01)


def test_time_offset_shifts_the_track() -> None:
    loc = open_locator(LocationConfig(kind="gpx", path=str(DRIVE), time_offset_s=3600))
    assert loc.position_at(at(1)) is None
    shifted = loc.position_at(at(3601))
    assert shifted is not None and shifted.lat == pytest.approx(31.20005)


def test_gpx_1_0_and_unnamespaced_files_are_read() -> None:
    pts = '<trkpt lat="1" lon="2"><time>2024-05-01T08:00:00+00:00</time></trkpt>'
    for ns in ('xmlns="http://www.topografix.com/GPX/1/0"', ""):
        (segment,) = parse_gpx(gpx(pts, ns=ns))
        assert segment[0].lat == 1.0 and segment[0].time == T0


def test_naive_times_are_utc_and_points_are_sorted() -> None:
    pts = (
        '<trkpt lat="1.001" lon="2"><time>2024-05-01T08:00:02</time></trkpt>\n'
        '<trkpt lat="1.000" lon="2"><time>2024-05-01T08:00:00</time></trkpt>'
    )
    (segment,) = parse_gpx(gpx(pts))
    assert [p.time for p in segment] == [T0, at(2)]


@pytest.mark.parametrize(
    ("body", "line", "words"),
    [
        ('<trkpt lat="31.2" lon="121.4"><time>2024-05-01T08:00:00Z</time>\n</trkseg>', 5, "malformed GPX"),
        ('<trkpt lat="north" lon="121.4"><time>2024-05-01T08:00:00Z</time></trkpt>', 4, "latitude"),
        ('<trkpt lat="31.2" lon="200"><time>2024-05-01T08:00:00Z</time></trkpt>', 4, "longitude"),
        ('<trkpt lat="31.2" lon="121.4"></trkpt>', 4, "no <time>"),
        ('<trkpt lat="31.2" lon="121.4"><time>yesterday</time></trkpt>', 4, "ISO 8601"),
        (
            '<trkpt lat="31.2" lon="121.4"><ele>high</ele><time>2024-05-01T08:00:00Z</time></trkpt>',
            4,
            "<ele>",
        ),
    ],
)
def test_malformed_files_name_the_file_and_line(tmp_path: Path, body: str, line: int, words: str) -> None:
    path = tmp_path / "bad.gpx"
    path.write_bytes(gpx(body))
    with pytest.raises(LocationError) as info:
        open_locator(LocationConfig(kind="gpx", path=str(path)))
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert words in message


def test_not_a_gpx_file_or_no_points_or_missing(tmp_path: Path) -> None:
    kml = tmp_path / "route.kml"
    kml.write_text('<?xml version="1.0"?><kml><Document/></kml>')
    with pytest.raises(LocationError, match="root element is <kml>"):
        GpxLocator(kml)
    empty = tmp_path / "empty.gpx"
    empty.write_bytes(gpx(""))
    with pytest.raises(LocationError, match="no track points"):
        GpxLocator(empty)
    with pytest.raises(LocationError, match="does not exist"):
        GpxLocator(tmp_path / "missing.gpx")


def test_bearing_across_the_antimeridian() -> None:
    assert bearing_deg(0, 179.9, 0, -179.9) == pytest.approx(90.0)
    assert distance_m(0, 179.9, 0, -179.9) == pytest.approx(0.2 * METRES_PER_DEG_LAT, rel=1e-6)

"""A real sign approached by a patrol van, through the whole box: the `new` event places the sign.

The van drives at 5 m/s, a frame every 0.5 s; a real shop-sign photo is zoomed about its centre as
a pinhole camera would see the sign come closer (its size in the frame ∝ 1 / distance, from 40 m to
17.5 m). The demo box's detectors find it, the tracker follows it, and with ``await_place_s`` the
signboard rule holds `new` until the box has placed the sign. Driven north, then south past the same
sign: both passes place it where it is, though the van's own fixes at those moments are tens of
metres apart (what the server matched on before).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import pytest
import yaml

from bench.object_placement import FIRST_DEPTH_M, FRAME_S, FRAMES, PHOTO_DEPTH_M, SPEED_MPS
from demo.approach import axis_column, zoomed
from edge.config import load_config
from edge.location.geo import EARTH_RADIUS_M, distance_m
from edge.pipeline import from_config
from streetwatch.events import ViolationEvent
from tests.edge.test_edge_cli import SAMPLES, write_config

SIGN_PHOTO = "signboards_vdl_IMG_0122.jpg"  # one shop sign across the photo (sample set)
LAT0, LON0 = 10.7769, 106.7009
START = datetime(2026, 3, 2, 9, 0, 0, tzinfo=timezone.utc)
SIGN_NORTH_M = 100.0


def north(metres: float) -> tuple[float, float]:
    return LAT0 + math.degrees(metres / EARTH_RADIUS_M), LON0


def write_frames(folder: Path, right_m: float = 0.0, hfov_deg: float = 90.0) -> None:
    """The approach's frames; the sign (centred in the photo) ``right_m`` right of the camera's axis."""
    image = cv2.imread(str(SAMPLES / SIGN_PHOTO))
    assert image is not None
    folder.mkdir()
    width = image.shape[1]
    axis_x = axis_column(width, width / 2, right_m, hfov_deg, PHOTO_DEPTH_M)
    for k in range(FRAMES):
        scale = PHOTO_DEPTH_M / (FIRST_DEPTH_M - k * SPEED_MPS * FRAME_S)
        cv2.imwrite(str(folder / f"frame_{k:03d}.jpg"), zoomed(image, scale, axis_x))


def write_route(path: Path, heading: int) -> None:
    """A straight drive past the sign: north (+1) from 60 m before it, or south (-1) from 60 m after."""
    start_m = SIGN_NORTH_M - heading * FIRST_DEPTH_M
    points = []
    for t in (0, 60):
        lat, lon = north(start_m + heading * SPEED_MPS * t)
        when = (START + timedelta(seconds=t)).strftime("%Y-%m-%dT%H:%M:%SZ")
        points.append(f'<trkpt lat="{lat:.7f}" lon="{lon:.7f}"><time>{when}</time></trkpt>')
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="streetwatch-tests" '
        f'xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>{"".join(points)}</trkseg></trk></gpx>\n'
    )


def drive_past(
    tmp_path: Path,
    heading: int,
    await_place_s: float,
    east_m: float = 0.0,
    camera: dict[str, object] | None = None,
) -> list[ViolationEvent]:
    """Events of one pass; the sign stands ``east_m`` east of the route (right when driving north)."""
    write_frames(tmp_path / "frames", right_m=heading * east_m)
    write_route(tmp_path / "route.gpx", heading)
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["source"].update(image_interval_s=FRAME_S, start_time=START.isoformat())
    raw["location"]["path"] = str(tmp_path / "route.gpx")
    raw["rules"]["illegal_signboard"]["await_place_s"] = await_place_s
    if camera is not None:
        raw["camera"] = camera
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    from_config(load_config(path)).run()
    events = map(ViolationEvent.from_json, (tmp_path / "events.jsonl").read_bytes().splitlines())
    return [e for e in events if e.violation_type.value == "illegal_signboard"]


def metres_from_sign(lat: float, lon: float, east_m: float = 0.0) -> float:
    sign_lat, sign_lon = north(SIGN_NORTH_M)
    sign_lon += math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(sign_lat))))
    return distance_m(lat, lon, sign_lat, sign_lon)


@pytest.mark.parametrize("heading", [1, -1], ids=["north", "south"])
def test_the_new_event_places_the_sign_from_either_direction(tmp_path: Path, heading: int) -> None:
    events = drive_past(tmp_path, heading, await_place_s=10)
    new = [e for e in events if e.lifecycle.value == "new"]
    assert len(new) == 1, [(e.lifecycle.value, e.box) for e in events]
    event = new[0]
    assert event.position is not None and event.object_position is not None
    camera_off = metres_from_sign(event.position.lat, event.position.lon)
    sign_off = metres_from_sign(event.object_position.lat, event.object_position.lon)
    assert camera_off > 15, camera_off  # where the van was: what a box without placing reports
    # bench.object_placement: 5-6 m median error on the shared sign photos, a fifth of the van's offset.
    assert sign_off < min(8.0, camera_off / 2), (sign_off, camera_off, event.object_position)
    assert event.object_position.along_m == pytest.approx(camera_off, abs=8)  # ahead of the van
    assert event.frames_seen < FRAMES  # sent while the sign was still in view, not at the track's end


def test_without_the_hold_new_goes_out_at_confirmation_and_the_end_places_the_sign(tmp_path: Path) -> None:
    events = drive_past(tmp_path, heading=1, await_place_s=0)
    by_kind = {e.lifecycle.value: e for e in events}
    assert set(by_kind) == {"new", "end"}, [e.lifecycle.value for e in events]
    assert by_kind["new"].frames_seen == 3
    end, position = by_kind["end"].object_position, by_kind["end"].position
    assert end is not None and position is not None
    camera_off = metres_from_sign(position.lat, position.lon)
    assert metres_from_sign(end.lat, end.lon) < min(8.0, camera_off / 2), (end, camera_off)


@pytest.mark.parametrize("heading", [1, -1], ids=["north", "south"])
def test_with_the_cameras_view_the_sign_is_placed_on_its_side(tmp_path: Path, heading: int) -> None:
    # The shop stands 6 m east of the route: on the van's right going north, on its left going south.
    events = drive_past(tmp_path, heading, await_place_s=10, east_m=6.0, camera={"hfov_deg": 90})
    new = [e for e in events if e.lifecycle.value == "new"]
    assert new, [(e.lifecycle.value, e.box) for e in events]
    # The shop's name board; shifted aside, the photo's round hanging sign shows too.
    board = max(new, key=lambda e: e.box[2] - e.box[0])
    place = board.object_position
    assert place is not None
    # The side: how far east of the route (what a place on the route gets wrong by the full 6 m).
    east = math.radians(place.lon - LON0) * EARTH_RADIUS_M * math.cos(math.radians(LAT0))
    assert east == pytest.approx(6.0, abs=1.5), place
    # The whole error, along the route too (as the test above; 4.7 m going south here).
    assert metres_from_sign(place.lat, place.lon, east_m=6.0) < min(8.0, place.accuracy_m), place

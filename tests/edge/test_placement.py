"""Placing a stationary object from a moving camera: where the camera's path is abreast of it."""

from __future__ import annotations

import math
import random

import pytest

from edge.location.geo import EARTH_RADIUS_M, distance_m
from edge.rules.placement import MAX_SAMPLES, ApproachSamples, CameraView
from streetwatch.events import Position

LAT0, LON0 = 31.2300, 121.4700
FOCAL_PX, SIGN_M = 1000.0, 1.2  # a 1.2 m tall sign seen through a ~1000 px focal length
FRAME_W, FRAME_H = 1920, 1080
FRAME = (FRAME_W, FRAME_H)
Box = tuple[float, float, float, float]


def north_of_start(metres: float) -> tuple[float, float]:
    return LAT0 + math.degrees(metres / EARTH_RADIUS_M), LON0


def camera(metres: float, accuracy: float | None = 3.0, source: str = "gpx") -> Position:
    lat, lon = north_of_start(metres)
    return Position.model_validate({"lat": lat, "lon": lon, "accuracy_m": accuracy, "source": source})


def sign_box(depth_m: float, noise: float = 0.0, rng: random.Random | None = None) -> tuple[float, ...]:
    """The sign's box in a pinhole camera ``depth_m`` ahead (or behind): height f * H / z."""
    height = FOCAL_PX * SIGN_M / abs(depth_m)
    if rng is not None:
        height *= 1 + rng.uniform(-noise, noise)
    top = 400.0 - height / 2
    return (900.0, top, 900.0 + height * 2, top + height)


def drive(camera_m: list[float], sign_m: float, **box_kwargs: object) -> ApproachSamples:
    samples = ApproachSamples()
    for s in camera_m:
        samples.observe(sign_box(sign_m - s, **box_kwargs), FRAME, camera(s))  # type: ignore[arg-type]
    return samples


def off_by_m(samples: ApproachSamples, sign_m: float) -> float:
    place = samples.estimate()
    assert place is not None, "no estimate"
    return distance_m(place.lat, place.lon, *north_of_start(sign_m))


def test_a_sign_ahead_is_placed_where_the_van_passes_it_not_where_it_was_first_seen() -> None:
    # Ten frames, 1 m apart, from 40 m to 31 m before the sign: the box grows by a third.
    samples = drive([float(s) for s in range(60, 70)], sign_m=100.0)
    assert off_by_m(samples, 100.0) < 0.5
    place = samples.estimate()
    assert place is not None and place.along_m == pytest.approx(31.0, abs=0.5)  # ahead of the latest frame
    assert distance_m(*north_of_start(69.0), *north_of_start(100.0)) > 30  # what the camera's fix says


def test_both_directions_agree_on_the_place() -> None:
    north = drive([60.0 + s for s in range(12)], sign_m=100.0)
    south = drive([140.0 - s for s in range(12)], sign_m=100.0)
    a, b = north.estimate(), south.estimate()
    assert a is not None and b is not None
    assert distance_m(a.lat, a.lon, b.lat, b.lon) < 1.0
    assert a.along_m > 0 and b.along_m > 0  # each ahead of its camera


def test_a_camera_looking_back_places_what_it_leaves_behind() -> None:
    samples = drive([105.0 + s for s in range(10)], sign_m=100.0)  # the box shrinks
    place = samples.estimate()
    assert place is not None and place.along_m < 0
    assert off_by_m(samples, 100.0) < 0.5


def test_detector_jitter_widens_the_error_but_keeps_the_place_close() -> None:
    rng = random.Random(7)
    samples = drive([50.0 + 0.8 * s for s in range(40)], sign_m=100.0, noise=0.04, rng=rng)
    place = samples.estimate()
    assert place is not None
    error = off_by_m(samples, 100.0)
    assert error < 4.0
    assert place.accuracy_m >= 3.0  # at least the camera fix's
    assert error <= 2 * place.accuracy_m  # the stated accuracy is honest about it


def test_too_much_jitter_gives_no_place() -> None:
    rng = random.Random(3)
    samples = drive([10.0 + 0.5 * s for s in range(6)], sign_m=100.0, noise=0.25, rng=rng)
    assert samples.estimate() is None


@pytest.mark.parametrize(
    ("camera_m", "why"),
    [
        ([60.0] * 10, "a van standing still"),
        ([60.0, 61.0, 62.0], "too few frames"),
        ([60.0, 60.5, 61.0, 61.5, 62.0], "under 3 m travelled"),
    ],
)
def test_what_cannot_tell_gives_no_place(camera_m: list[float], why: str) -> None:
    assert drive(camera_m, sign_m=100.0).estimate() is None, why


def test_a_still_photo_replayed_along_a_route_gives_no_place() -> None:
    samples = ApproachSamples()
    for s in range(20):  # the box does not grow: no approach to measure
        samples.observe(sign_box(30.0), FRAME, camera(float(s)))
    assert samples.estimate() is None


def test_fixed_cameras_missing_fixes_and_cut_boxes_are_not_sampled() -> None:
    samples = ApproachSamples()
    samples.observe(sign_box(30.0), FRAME, camera(0.0, source="fixed"))
    samples.observe(sign_box(30.0), FRAME, None)
    samples.observe((900.0, 0.0, 1000.0, 300.0), FRAME, camera(1.0))  # cut by the top of the frame
    samples.observe((900.0, 900.0, 1000.0, FRAME_H), FRAME, camera(2.0))  # and by the bottom
    assert len(samples) == 0
    samples.observe(sign_box(30.0), FRAME, camera(3.0))
    assert len(samples) == 1


def test_a_long_track_keeps_only_its_latest_frames() -> None:
    samples = drive([0.5 * s for s in range(3 * MAX_SAMPLES)], sign_m=100.0)
    assert len(samples) == MAX_SAMPLES
    assert off_by_m(samples, 100.0) < 0.5


def test_a_route_across_the_antimeridian_is_placed_on_the_right_side() -> None:
    samples = ApproachSamples()
    lat = 0.0
    for s in range(10):  # driving east across 180°, the sign 30 m ahead of the last frame
        east_m = -5.0 + s * 1.0
        lon = 180.0 + math.degrees(east_m / EARTH_RADIUS_M)
        lon = lon - 360.0 if lon >= 180.0 else lon
        fix = Position.model_validate({"lat": lat, "lon": lon, "accuracy_m": 1.0, "source": "gpx"})
        samples.observe(sign_box(34.0 - east_m), FRAME, fix)
    place = samples.estimate()
    assert place is not None and -180.0 <= place.lon < 180.0
    sign_lon = math.degrees(34.0 / EARTH_RADIUS_M) - 180.0
    assert distance_m(place.lat, place.lon, 0.0, sign_lon) < 0.5


# -- the side of the road (a camera view) ------------------------------------------------------

#: The field of view of the tests' pinhole: FOCAL_PX over a 1920 px frame (about 87.7°).
VIEW = CameraView(hfov_deg=math.degrees(2 * math.atan(FRAME_W / 2 / FOCAL_PX)))


def beside_box(
    depth_m: float, right_m: float, noise_px: float = 0.0, rng: random.Random | None = None
) -> Box:
    """The sign's box when it stands ``right_m`` to the right of the camera's axis, ``depth_m`` ahead."""
    height = FOCAL_PX * SIGN_M / abs(depth_m)
    centre = FRAME_W / 2 + FOCAL_PX * right_m / abs(depth_m)
    if rng is not None:
        centre += rng.uniform(-noise_px, noise_px)
    top = 400.0 - height / 2
    return (centre - height, top, centre + height, top + height)


def east_of(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat, lon + math.degrees(metres / (EARTH_RADIUS_M * math.cos(math.radians(lat))))


def test_with_the_cameras_view_a_sign_is_placed_on_its_side_of_the_road() -> None:
    sign = east_of(*north_of_start(100.0), 7.0)  # a shop front 7 m east of the van's lane
    on_path, beside = ApproachSamples(), ApproachSamples(VIEW)
    for s in range(60, 72):  # driving north: east is the right-hand side
        for samples in (on_path, beside):
            samples.observe(beside_box(100.0 - s, 7.0), FRAME, camera(float(s)))
    placed, unsided = beside.estimate(), on_path.estimate()
    assert placed is not None and unsided is not None
    assert distance_m(placed.lat, placed.lon, *sign) < 0.5
    assert distance_m(unsided.lat, unsided.lon, *sign) == pytest.approx(7.0, abs=0.5)  # on the lane


def test_both_directions_put_a_sign_on_the_same_side() -> None:
    sign = east_of(*north_of_start(100.0), 6.0)
    north, south = ApproachSamples(VIEW), ApproachSamples(VIEW)
    for k in range(12):
        north.observe(beside_box(40.0 - k, 6.0), FRAME, camera(60.0 + k))
        south.observe(beside_box(40.0 - k, -6.0), FRAME, camera(140.0 - k))  # driving south: east is left
    a, b = north.estimate(), south.estimate()
    assert a is not None and b is not None
    assert distance_m(a.lat, a.lon, *sign) < 0.5 and distance_m(b.lat, b.lon, *sign) < 0.5


def test_a_camera_looking_back_sees_the_right_hand_side_on_the_left_of_its_frame() -> None:
    sign = east_of(*north_of_start(100.0), 5.0)
    samples = ApproachSamples(CameraView(VIEW.hfov_deg, facing="behind"))
    for k in range(10):  # driving north away from it: the sign, east, shows left of the axis
        samples.observe(beside_box(5.0 + k, -5.0), FRAME, camera(105.0 + k))
    place = samples.estimate()
    assert place is not None and place.along_m < 0
    assert distance_m(place.lat, place.lon, *sign) < 0.5


def test_the_boxes_wandering_sideways_widen_the_stated_accuracy() -> None:
    still, wobbly = ApproachSamples(VIEW), ApproachSamples(VIEW)
    rng = random.Random(11)
    for k in range(20):
        fix = camera(60.0 + k, accuracy=1.0)
        still.observe(beside_box(40.0 - k, 6.0), FRAME, fix)
        wobbly.observe(beside_box(40.0 - k, 6.0, noise_px=150.0, rng=rng), FRAME, fix)
    a, b = still.estimate(), wobbly.estimate()
    assert a is not None and b is not None
    assert b.accuracy_m > a.accuracy_m
    sign = east_of(*north_of_start(100.0), 6.0)
    assert distance_m(b.lat, b.lon, *sign) <= b.accuracy_m


@pytest.mark.parametrize("hfov", [0.0, 180.0, -10.0])
def test_an_impossible_field_of_view_is_refused(hfov: float) -> None:
    with pytest.raises(ValueError, match="hfov_deg"):
        CameraView(hfov)


def test_the_centre_column_is_straight_ahead_and_the_edge_is_half_the_field_of_view() -> None:
    view = CameraView(90.0)
    assert view.offset_ratio(960.0, 1920) == 0.0
    assert view.offset_ratio(1920.0, 1920) == pytest.approx(1.0)  # tan 45°
    assert CameraView(90.0, facing="behind").offset_ratio(0.0, 1920) == pytest.approx(1.0)


def test_a_place_beyond_reach_beside_the_road_is_not_given() -> None:
    # A nearly 180° lens: a box at the frame's edge 40 m ahead reads as kilometres aside.
    wide, unsided = ApproachSamples(CameraView(178.0)), ApproachSamples()
    for k in range(10):
        height = FOCAL_PX * SIGN_M / (40.0 - k)
        box = (FRAME_W - 2 * height, 300.0, float(FRAME_W), 300.0 + height)
        for samples in (wide, unsided):
            samples.observe(box, FRAME, camera(60.0 + k))
    assert wide.estimate() is None
    assert unsided.estimate() is not None  # along the route the same frames place it

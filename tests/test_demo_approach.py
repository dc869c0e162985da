"""The demo's approach frames: made from a real sample photo by ``demo.approach``, as shipped."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from demo.approach import (
    FIRST_FRAME,
    FRAMES,
    LAST_DEPTH_M,
    PHOTO,
    SAMPLES,
    SIGN_RIGHT_M,
    ZONES,
    Approach,
    frames,
    plan,
    zone,
)
from edge.config import load_config
from edge.location.gpx import GpxLocator
from server.signs.zones import read_zones, zone_at
from streetwatch.geo import EARTH_RADIUS_M

REPO = Path(__file__).resolve().parent.parent
DEMO = load_config(REPO / "deploy" / "edge.demo.yaml")


def demo_plan() -> Approach:
    assert DEMO.source.start_time is not None and DEMO.location.path is not None
    return plan(Path(DEMO.location.path), DEMO.source.start_time, DEMO.source.image_interval_s)


def test_the_van_closes_in_on_the_sign_at_the_routes_speed_with_the_sign_on_its_right() -> None:
    approach = demo_plan()
    depths = approach.depths_m
    assert len(depths) == FRAMES and depths[-1] == pytest.approx(LAST_DEPTH_M)
    steps = np.diff(depths)
    assert np.all(steps < 0) and np.all(np.abs(steps + 7.3) < 0.5)  # the route's 7.3 m/s, a frame a second
    # Where the van is at the last frame, and which way it drives: the sign is ahead and to its right.
    assert DEMO.source.start_time is not None
    last = DEMO.source.start_time + timedelta(seconds=FIRST_FRAME - 2 + FRAMES)
    van = GpxLocator(DEMO.location.path or "", max_fix_age_s=60).position_at(last)
    assert van is not None and van.heading_deg is not None
    east = math.radians(approach.sign_lon - van.lon) * EARTH_RADIUS_M * math.cos(math.radians(van.lat))
    north = math.radians(approach.sign_lat - van.lat) * EARTH_RADIUS_M
    heading = math.radians(van.heading_deg)
    ahead = east * math.sin(heading) + north * math.cos(heading)
    right = east * math.cos(heading) - north * math.sin(heading)
    assert ahead == pytest.approx(LAST_DEPTH_M, abs=0.5) and right == pytest.approx(SIGN_RIGHT_M, abs=0.5)


def test_the_shipped_frames_are_what_the_code_makes_and_the_replay_ends_with_them() -> None:
    photo = cv2.imread(str(SAMPLES / "images" / PHOTO))
    assert photo is not None
    made = frames(np.asarray(photo, dtype=np.uint8), demo_plan())
    for k, frame in enumerate(made):
        shipped = cv2.imread(str(SAMPLES / "approach" / f"approach_{k + 1:02d}.jpg"))
        assert shipped is not None and shipped.shape == frame.shape
        assert np.abs(shipped.astype(np.int16) - frame).mean() < 3  # JPEG, quality 90
        link = SAMPLES / "replay" / f"frame_{FIRST_FRAME + k:04d}.jpg"
        assert link.resolve() == (SAMPLES / "approach" / f"approach_{k + 1:02d}.jpg").resolve()
    assert len(list((SAMPLES / "replay").glob("*.jpg"))) == FIRST_FRAME + FRAMES - 1  # nothing after them


def test_the_demo_zone_takes_the_signs_side_of_the_street_only() -> None:
    approach = demo_plan()
    assert json.loads(ZONES.read_text()) == zone(approach)  # as the code makes it
    zones = read_zones(ZONES)
    assert zone_at(zones, approach.sign_lat, approach.sign_lon) is not None
    # The van's lane and the other side of the street (the sign mirrored across the route) are not in it.
    heading = math.radians(approach.heading_deg)
    cos_lat = math.cos(math.radians(approach.sign_lat))
    for right_m in (0.0, -SIGN_RIGHT_M):
        shift = right_m - SIGN_RIGHT_M
        lat = approach.sign_lat + math.degrees(-shift * math.sin(heading) / EARTH_RADIUS_M)
        lon = approach.sign_lon + math.degrees(shift * math.cos(heading) / (EARTH_RADIUS_M * cos_lat))
        assert zone_at(zones, lat, lon) is None, right_m

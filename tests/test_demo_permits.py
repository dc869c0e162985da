"""The demo's permit list (``demo.permits``): as the code makes it, at the replay's frames of the sign,
with a photo the register recognises as the sign the box crops."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np

from demo.permits import FRAMES, PERMITS, PHOTO, PHOTO_FILE, permit_list, photo
from edge.config import load_config
from edge.location.gpx import GpxLocator
from server.settings import SignSettings
from server.signs.fingerprint import fingerprint, similarity
from streetwatch.geo import distance_m

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "deploy" / "edge.demo.yaml"
SAMPLES = REPO / "datasets" / "samples"


def test_the_shipped_list_and_photo_are_what_the_code_makes() -> None:
    assert PERMITS.read_text() == permit_list(DEMO)
    shipped = cv2.imread(str(PERMITS.parent / PHOTO_FILE))
    made = cv2.imdecode(np.frombuffer(photo(), np.uint8), cv2.IMREAD_COLOR)
    assert shipped is not None and made is not None and shipped.shape == made.shape
    assert np.abs(shipped.astype(np.int16) - made).mean() < 3  # JPEG, quality 90
    for frame in range(FRAMES[0] - 2, FRAMES[1] + 1):  # the replay's four frames of that photo
        link = SAMPLES / "replay" / f"frame_{frame:04d}.jpg"
        assert link.resolve() == (SAMPLES / "images" / PHOTO).resolve()


def test_the_permit_stands_within_reach_of_either_confirming_frame_and_looks_like_the_sign() -> None:
    row = PERMITS.read_text().splitlines()[1].split(",")
    lat, lon = float(row[1]), float(row[2])
    config = load_config(DEMO)
    assert config.source.start_time is not None and config.location.path is not None
    locator = GpxLocator(config.location.path, max_fix_age_s=60)
    reach = SignSettings().max_distance_m
    for frame in FRAMES:
        fix = locator.position_at(config.source.start_time + timedelta(seconds=frame - 1))
        assert fix is not None and distance_m(lat, lon, fix.lat, fix.lon) < reach
    # The sign as a box crops it from the photo (a margin, shrunk to 640 px wide) still matches.
    image = cv2.imread(str(SAMPLES / "images" / PHOTO))
    assert image is not None
    box_crop = cv2.resize(image[0:530, 0:940], (640, 361))
    ok, data = cv2.imencode(".jpg", box_crop, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    alike = similarity(fingerprint(photo()), fingerprint(data.tobytes()))
    assert alike >= SignSettings().min_similarity, alike

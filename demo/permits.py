"""The demo's permit list: one made-up permit for a sign the replay passes, so the demo shows the
sign register at work. The permit office's list names the phone-case workshop's sign
(``signboards_vdl_IMG_0165.jpg``, MIT; ``datasets/samples/LICENSE.md``) with its place and a photo
of it; the demo's server imports the list before the replay, the box sees the sign, and the
register attaches the sighting to the permit: no case, one sighting on the Signs page.

The place is the demo van's fix between the two replay frames the box confirms the sign on
(``datasets/samples/track.gpx`` at those frames' times), so a box that confirms it one frame earlier
or later still finds it within ``signs.max_distance_m``. The photo is the sign cut from the sample
photo, as a permit office would photograph it. ``python -m demo.permits`` makes both again;
``tests/test_demo_approach.py`` checks that the shipped files are what it makes.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path

import cv2

from demo.approach import SAMPLES
from edge.config import load_config
from edge.location.gpx import GpxLocator

PERMITS = SAMPLES / "permits" / "permits.csv"
PHOTO = "signboards_vdl_IMG_0165.jpg"  # a phone-case workshop's fascia sign
PHOTO_FILE = "sign_IMG_0165.jpg"
#: The sign in the photo (x1, y1, x2, y2 in its pixels): the permit office's picture of it.
SIGN = (0, 16, 924, 522)
#: The replay frames (frame_0093..0096 show the photo) between which the box confirms the sign.
FRAMES = (95, 96)
PERMIT_ID = "DEMO-2026-0165"


def photo() -> bytes:
    image = cv2.imread(str(SAMPLES / "images" / PHOTO))
    if image is None:
        raise FileNotFoundError(f"{SAMPLES / 'images' / PHOTO} is missing")
    x1, y1, x2, y2 = SIGN
    ok, data = cv2.imencode(".jpg", image[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, 90])
    if not ok:
        raise ValueError("cannot encode the permit photo")
    return data.tobytes()


def place(device_config: Path) -> tuple[float, float]:
    """The van's fix midway between the frames in ``FRAMES``, on the demo's route and timing."""
    config = load_config(device_config)
    start, interval, track = config.source.start_time, config.source.image_interval_s, config.location.path
    if start is None or track is None:
        raise ValueError(f"{device_config} replays no timed images along a GPX track")
    locator = GpxLocator(Path(track), max_fix_age_s=interval * 60)
    fixes = [locator.position_at(start + timedelta(seconds=(frame - 1) * interval)) for frame in FRAMES]
    if any(fix is None for fix in fixes):
        raise ValueError(f"{track} does not cover frames {FRAMES}")
    lats = [fix.lat for fix in fixes if fix is not None]
    lons = [fix.lon for fix in fixes if fix is not None]
    return round(sum(lats) / len(lats), 7), round(sum(lons) / len(lons), 7)


def permit_list(device_config: Path) -> str:
    lat, lon = place(device_config)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["permit_id", "lat", "lon", "valid_until", "description", "photo"])
    writer.writerow(
        [PERMIT_ID, lat, lon, "2030-12-31", "made up for the demo: a phone-case workshop's sign", PHOTO_FILE]
    )
    return out.getvalue()


def main() -> None:
    from streetwatch.paths import deploy_dir

    PERMITS.parent.mkdir(parents=True, exist_ok=True)
    (PERMITS.parent / PHOTO_FILE).write_bytes(photo())
    PERMITS.write_text(permit_list(deploy_dir() / "edge.demo.yaml"))
    print(f"wrote {PERMITS} and {PERMITS.parent / PHOTO_FILE}")


if __name__ == "__main__":
    main()

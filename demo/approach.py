"""The demo's approach: a real shop sign as the patrol van's front camera sees it come closer.

The replay's other scenes are still photos, each held for four frames: from those a box can tell
where the van was, not where the object is. These frames are one sample photo (a shop sign, MIT;
``datasets/samples/LICENSE.md``) scaled as a pinhole camera with the demo box's field of view
(``camera.hfov_deg`` in ``deploy/edge.demo.yaml``) would show the sign from the van's positions on
the demo route (``datasets/samples/track.gpx``) at the frames' times, the sign standing
``SIGN_RIGHT_M`` to the right of the route. The demo's box then places the sign itself, on its
side of the road, and the console's map shows that place beside the van's fix.

The frames are made once and shipped (``python -m demo.approach`` makes them again and links them
into the replay); ``tests/test_demo.py`` checks where the demo's box places the sign, against
:func:`plan`. The demo's server also gets a made-up no-sign zone along that side of the street
(``datasets/samples/no_sign_zones.geojson``, :func:`zone`), so the sign's case says it hangs where
no sign may: the zone takes the right-hand side only, which the box's side estimate tells.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.location.geo import bearing_deg, distance_m
from edge.location.gpx import GpxLocator
from streetwatch.geo import moved

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "datasets" / "samples"
PHOTO = "signboards_vdl_IMG_0122.jpg"  # one shop sign across the photo (bakery "Tiệm Bánh SanSan")
FIRST_FRAME = 129  # the replay's frame number of the first approach frame: after the still scenes
FRAMES = 7
#: The photo shows the sign as from this far (a phone photo across a pavement).
PHOTO_DEPTH_M = 10.0
#: How far right of the route the sign stands (a shop front beside a lane).
SIGN_RIGHT_M = 5.0
#: The last frame shows the sign from this far ahead.
LAST_DEPTH_M = 11.0
HFOV_DEG = 90.0  # deploy/edge.demo.yaml camera.hfov_deg


def zoomed(image: NDArray[np.uint8], scale: float, axis_x: float) -> NDArray[np.uint8]:
    """``image`` as a pinhole camera sees it from ``1 / scale`` times as far, looking at column ``axis_x``.

    Scaling about the optical axis is exact for a scene at one depth, such as a shop front.
    """
    h, w = image.shape[:2]
    cy = h / 2
    zoom = np.array([[scale, 0, w / 2 - scale * axis_x], [0, scale, cy * (1 - scale)]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(image, zoom, (w, h), borderValue=(114, 114, 114)), dtype=np.uint8)


def axis_column(width: int, object_x: float, right_m: float, hfov_deg: float, photo_depth_m: float) -> float:
    """The photo column a camera looks along when the object at column ``object_x``, ``photo_depth_m``
    ahead, stands ``right_m`` to the right of its axis."""
    focal_px = width / 2 / math.tan(math.radians(hfov_deg) / 2)
    return object_x - focal_px * right_m / photo_depth_m


@dataclass(frozen=True)
class Approach:
    """The sign's distance ahead at each approach frame, and where the sign stands."""

    depths_m: list[float]
    sign_lat: float
    sign_lon: float
    heading_deg: float  # the van's, at the last frame


def plan(track: Path, start: datetime, interval_s: float) -> Approach:
    """Where the van is at each approach frame (the replay's timing), and so the sign's place."""
    locator = GpxLocator(track, max_fix_age_s=interval_s * 60)
    times = [start + timedelta(seconds=(FIRST_FRAME - 1 + k) * interval_s) for k in range(FRAMES)]
    fixes = [locator.position_at(t) for t in times]
    if any(f is None for f in fixes):
        raise ValueError(f"{track} does not cover the approach frames' times {times[0]} to {times[-1]}")
    points = [(f.lat, f.lon) for f in fixes if f is not None]
    travelled = [0.0]
    for a, b in pairwise(points):
        travelled.append(travelled[-1] + distance_m(*a, *b))
    abreast_at = travelled[-1] + LAST_DEPTH_M
    heading_deg = bearing_deg(*points[-2], *points[-1])
    # Straight on from the last frame to abreast of the sign, then to the right of the route.
    sign_lat, sign_lon = moved(*points[-1], *_east_north(heading_deg, LAST_DEPTH_M, SIGN_RIGHT_M))
    return Approach([abreast_at - s for s in travelled], sign_lat, sign_lon, heading_deg)


def _east_north(heading_deg: float, ahead_m: float, right_m: float) -> tuple[float, float]:
    """Metres east and north of a step ``ahead_m`` along ``heading_deg`` and ``right_m`` to its right."""
    heading = math.radians(heading_deg)
    east = ahead_m * math.sin(heading) + right_m * math.cos(heading)
    north = ahead_m * math.cos(heading) - right_m * math.sin(heading)
    return east, north


ZONES = SAMPLES / "no_sign_zones.geojson"
#: The demo's no-sign zone: the right-hand side of the street, this far before and after the sign...
ZONE_ALONG_M = (-40.0, 25.0)
#: ...from the kerb to the shop fronts, metres right of the route.
ZONE_ACROSS_M = (2.5, 12.0)


def zone(approach: Approach) -> dict[str, object]:
    """A GeoJSON FeatureCollection: one made-up zone along the sign's side of the street."""

    def corner(along: float, across: float) -> list[float]:
        step = _east_north(approach.heading_deg, along, across - SIGN_RIGHT_M)  # from the sign's place
        lat, lon = moved(approach.sign_lat, approach.sign_lon, *step)
        return [round(lon, 7), round(lat, 7)]

    (back, front), (kerb, fronts) = ZONE_ALONG_M, ZONE_ACROSS_M
    ring = [corner(back, kerb), corner(front, kerb), corner(front, fronts), corner(back, fronts)]
    feature = {
        "type": "Feature",
        "properties": {"name": "Demo heritage street, east side", "reason": "made up for the demo: no signs"},
        "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
    }
    return {"type": "FeatureCollection", "features": [feature]}


def frames(image: NDArray[np.uint8], approach: Approach) -> list[NDArray[np.uint8]]:
    """The approach frames; the sign is taken to fill the photo's width (it does, within a few %)."""
    width = image.shape[1]
    axis_x = axis_column(width, width / 2, SIGN_RIGHT_M, HFOV_DEG, PHOTO_DEPTH_M)
    return [zoomed(image, PHOTO_DEPTH_M / depth, axis_x) for depth in approach.depths_m]


def main() -> int:
    from edge.config import load_config

    config = load_config(REPO / "deploy" / "edge.demo.yaml")
    if config.camera is None or config.camera.hfov_deg != HFOV_DEG:
        raise SystemExit(f"deploy/edge.demo.yaml must say camera: {{hfov_deg: {HFOV_DEG:g}}}")
    assert config.source.start_time is not None and config.location.path is not None
    approach = plan(Path(config.location.path), config.source.start_time, config.source.image_interval_s)
    image = cv2.imread(str(SAMPLES / "images" / PHOTO))
    if image is None:
        raise SystemExit(f"cannot read {SAMPLES / 'images' / PHOTO}")
    folder = SAMPLES / "approach"
    folder.mkdir(exist_ok=True)
    for k, frame in enumerate(frames(np.asarray(image, dtype=np.uint8), approach)):
        name = f"approach_{k + 1:02d}.jpg"
        cv2.imwrite(str(folder / name), frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        link = SAMPLES / "replay" / f"frame_{FIRST_FRAME + k:04d}.jpg"
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / "approach" / name)
        print(f"{link.name} -> approach/{name}: the sign {approach.depths_m[k]:.1f} m ahead")
    print(f"the sign stands at {approach.sign_lat:.6f}, {approach.sign_lon:.6f}")
    ZONES.write_text(json.dumps(zone(approach), indent=1) + "\n")
    print(f"{ZONES.relative_to(REPO)}: a no-sign zone along the sign's side of the street")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

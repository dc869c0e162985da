"""Where a stationary object is, from a moving camera: the point of the camera's path abreast of it.

A patrol van's box confirms a sign or a pile while it is still some tens of metres ahead, so the
van's position at that moment describes the object badly: a second pass from the other direction
confirms it as far on the other side, and a permit list's surveyed position matches neither.

A pinhole camera needs no calibration for the along-track part. An object of height ``H`` at
depth ``z`` (along the optical axis, i.e. the direction of travel for a camera looking ahead or
behind) is ``h = f * H / z`` pixels tall, so ``1 / h = z / (f * H)``: linear in ``z``, which falls by
exactly the distance the camera travels. Fitting ``1 / h`` against the distance travelled ``s`` and
finding where the line reaches zero gives the ``s`` at which the camera is abreast of the object,
whatever ``f`` and ``H`` are. The box's height, not its width, because a sign along a shop front
gets narrower (foreshortened) as the van draws level with it, but not shorter.

The side of the road needs one number more, the camera's horizontal field of view
(:class:`CameraView`, config ``camera``). Once the fit knows each frame's depth ``z``, the box
centre's column ``x`` gives the object's offset from the optical axis, ``z * (x - cx) / f``: the
place moves that far to the right (or left) of the camera's path. A dispatcher sends a crew to the
right side of a divided road; a permit list's surveyed shop front is beside the road, not on it.
Without a configured view the place stays on the path, as a street's width is within the matching
radii.

The fit is trusted only when the camera moved a few metres, the box grew or shrank measurably and
the intercept's standard error (delta method) is small; otherwise there is no estimate and the
receiver falls back on the camera's position. Boxes cut by the top or bottom of the frame are
left out (their height is not the object's).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

from streetwatch.events import ObjectPosition, Position, ViolationType
from streetwatch.geo import EARTH_RADIUS_M, moved

#: Objects that move themselves: the camera's travel says nothing about where they are.
MOVING_TYPES = frozenset({ViolationType.unsealed_truck})
#: Samples kept per track: the latest ones describe the nearest, best-resolved part of the approach.
MAX_SAMPLES = 64
#: At least this many usable frames...
MIN_SAMPLES = 4
#: ...spread over at least this much travel (metres)...
MIN_TRAVEL_M = 3.0
#: ...in which the box height changed by at least this factor.
MIN_GROWTH = 1.15
#: No estimate when the intercept's standard error is larger than this (metres).
MAX_ERROR_M = 8.0
#: Nor when the object would lie further than this from the camera's latest position (metres; the
#: wire format refuses a place beyond ``streetwatch.events.MAX_PLACE_REACH_M``).
MAX_REACH_M = 200.0
#: A detector's boxes are not exactly proportional to the object (a far, small box is looser): on
#: real sign photos (``bench.object_placement``) the estimate is off by about this share of the
#: distance it extrapolates over, whatever the fit's residuals say. Part of the stated accuracy; with
#: it, 71 % of signs and 67 % of piles lie within it at the first estimate.
ALONG_ERROR = 0.25
#: A box edge within this many pixels of the top or bottom of the frame cuts the object.
EDGE_PX = 1.0


@dataclass(frozen=True, slots=True)
class CameraView:
    """How the camera looks out of the vehicle: enough to tell an object's side of the path."""

    hfov_deg: float  # horizontal field of view of the (undistorted) frame
    facing: Literal["ahead", "behind"] = "ahead"

    def __post_init__(self) -> None:
        if not 0 < self.hfov_deg < 180:
            raise ValueError(f"hfov_deg must be between 0 and 180, got {self.hfov_deg}")

    def offset_ratio(self, x_px: float, width_px: float) -> float:
        """Sideways offset per metre of depth of what column ``x`` shows; positive: right of travel."""
        half = width_px / 2
        ratio = (x_px - half) / half * math.tan(math.radians(self.hfov_deg) / 2)
        return ratio if self.facing == "ahead" else -ratio  # a rear camera's right is the path's left


@dataclass(frozen=True, slots=True)
class PlaceSample:
    """One frame of a track: where the camera was, how tall the object's box was and where it was."""

    lat: float
    lon: float
    height_px: float
    accuracy_m: float | None
    #: Sideways offset per metre of depth (:meth:`CameraView.offset_ratio`); None without a view.
    offset_ratio: float | None = None


class ApproachSamples:
    """The frames of one track that can place it (see the module docstring)."""

    def __init__(self, view: CameraView | None = None) -> None:
        self._view = view
        self._samples: deque[PlaceSample] = deque(maxlen=MAX_SAMPLES)
        # A held 'new' asks on every frame and its event asks again: fit once per new sample.
        self._estimate: ObjectPosition | None = None
        self._fitted = True

    def __len__(self) -> int:
        return len(self._samples)

    def observe(
        self,
        box: tuple[float, float, float, float],
        frame_size: tuple[int, int],
        position: Position | None,
    ) -> None:
        """Add one frame (``frame_size`` is width, height); frames from a fixed camera, without a
        fix, or with a cut box are skipped."""
        if position is None or position.source == "fixed":
            return
        x1, y1, x2, y2 = box
        width, height = frame_size
        if y1 <= EDGE_PX or y2 >= height - EDGE_PX or y2 - y1 <= 0:
            return
        ratio = None if self._view is None else self._view.offset_ratio((x1 + x2) / 2, width)
        self._samples.append(PlaceSample(position.lat, position.lon, y2 - y1, position.accuracy_m, ratio))
        self._fitted = False

    def estimate(self) -> ObjectPosition | None:
        """The object's estimated position, or None when the frames cannot tell."""
        if not self._fitted:
            self._estimate, self._fitted = estimate_place(list(self._samples)), True
        return self._estimate


def estimate_place(samples: list[PlaceSample]) -> ObjectPosition | None:
    """Fit ``1 / height`` against the distance travelled; the zero crossing is abreast of the object."""
    if len(samples) < MIN_SAMPLES:
        return None
    heights = [s.height_px for s in samples]
    if max(heights) / min(heights) < MIN_GROWTH:
        return None
    origin = samples[0]
    cos_lat = math.cos(math.radians(origin.lat))
    east = [math.radians(_wrapped(s.lon - origin.lon)) * EARTH_RADIUS_M * cos_lat for s in samples]
    north = [math.radians(s.lat - origin.lat) * EARTH_RADIUS_M for s in samples]
    travel = math.hypot(east[-1], north[-1])
    if travel < MIN_TRAVEL_M:
        return None
    ux, uy = east[-1] / travel, north[-1] / travel  # the direction of travel, first to latest frame
    along = [x * ux + y * uy for x, y in zip(east, north, strict=True)]
    fit = _weighted_line(along, [1.0 / h for h in heights], [h * h for h in heights])
    if fit is None:
        return None
    intercept, slope, error = fit
    crossing = -intercept / slope
    ahead = crossing - along[-1]
    if abs(ahead) > MAX_REACH_M or error > MAX_ERROR_M:
        return None
    across, across_error = _sideways(samples, [abs(crossing - a) for a in along], heights)
    if math.hypot(ahead, across) > MAX_REACH_M:
        return None  # a box at a wide lens's edge, far off: no believable place
    east_m = crossing * ux + across * uy  # the path's right-hand side is (uy, -ux)
    north_m = crossing * uy - across * ux
    lat, lon = moved(origin.lat, origin.lon, east_m, north_m)
    camera_error = samples[-1].accuracy_m or 0.0
    return ObjectPosition(
        lat=lat,
        lon=lon,
        accuracy_m=round(math.hypot(error, ALONG_ERROR * ahead, across_error, camera_error), 1),
        along_m=round(ahead, 1),
    )


def _sideways(samples: list[PlaceSample], depths: list[float], heights: list[float]) -> tuple[float, float]:
    """The object's offset to the right of the path (metres) and its error; (0, 0) without a view.

    Each frame says ``depth * offset_ratio``; the mean weighs near frames more (``h²``, as the fit
    does). The error adds their spread to the depth's own share (:data:`ALONG_ERROR`): the offset
    is proportional to the depth it is read at.
    """
    pairs = [
        (s.offset_ratio * depth, h * h)
        for s, depth, h in zip(samples, depths, heights, strict=True)
        if s.offset_ratio is not None
    ]
    if not pairs:
        return 0.0, 0.0
    total = sum(w for _, w in pairs)
    across = sum(x * w for x, w in pairs) / total
    spread = math.sqrt(sum(w * (x - across) ** 2 for x, w in pairs) / total)
    return across, math.hypot(spread, ALONG_ERROR * across)


def _wrapped(degrees: float) -> float:
    """A longitude (difference) folded into [-180, 180): a route may cross the antimeridian."""
    return (degrees + 180.0) % 360.0 - 180.0


def _weighted_line(
    xs: list[float], ys: list[float], weights: list[float]
) -> tuple[float, float, float] | None:
    """Weighted least squares ``y = a + b x``; (a, b, standard error of the zero crossing ``-a / b``).

    Weights ``h²``: a box's height is off by a few per cent whatever its size, so ``1 / h`` of a far,
    small box varies more, as ``1 / h²``.
    """
    n = len(xs)
    total = sum(weights)
    mean_x = sum(w * x for w, x in zip(weights, xs, strict=True)) / total
    mean_y = sum(w * y for w, y in zip(weights, ys, strict=True)) / total
    sxx = sum(w * (x - mean_x) ** 2 for w, x in zip(weights, xs, strict=True))
    if sxx <= 0:
        return None
    sxy = sum(w * (x - mean_x) * (y - mean_y) for w, x, y in zip(weights, xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    if slope == 0:
        return None
    residual = sum(w * (y - intercept - slope * x) ** 2 for w, x, y in zip(weights, xs, ys, strict=True))
    sigma2 = residual / (n - 2) if n > 2 else 0.0  # variance of a unit-weight observation
    var_slope = sigma2 / sxx
    var_intercept = sigma2 * (1 / total + mean_x**2 / sxx)
    cov = -mean_x * sigma2 / sxx
    crossing = -intercept / slope
    var_crossing = (var_intercept + crossing**2 * var_slope + 2 * crossing * cov) / slope**2
    return intercept, slope, math.sqrt(max(var_crossing, 0.0))

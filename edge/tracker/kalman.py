"""A constant-velocity Kalman filter over boxes, in seconds rather than frames.

State: ``[cx, cy, a, h, vcx, vcy, va, vh]`` (centre, aspect ratio w/h, height and
their rates per second), as in ByteTrack/SORT. Why a Kalman filter and not a
lighter alpha-beta smoother: on a moving vehicle boxes drift steadily across the
frame, and the filter's velocity estimate is what lets a track survive a second
of occlusion; the cost (a few 8x8 products per track per frame) is negligible
next to inference. Why seconds: the edge replays logs at any rate and drops
frames under load, so a step must mean the same motion whatever the frame rate.
Noise follows ByteTrack's choice (proportional to the box height) and grows
linearly with the elapsed time, referenced to one frame at 30 fps.

Why hand-written: ``filterpy`` needs scipy (and matplotlib for its plots), which are outside
the box's dependency budget (tests/edge/test_dependency_budget.py), and OpenCV's
``cv2.KalmanFilter`` steps in frames, not in seconds; the filter is a page of numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Vector = NDArray[np.float64]
Matrix = NDArray[np.float64]

_REFERENCE_DT = 1.0 / 30.0
_POSITION_WEIGHT = 1.0 / 20.0
_VELOCITY_WEIGHT = 1.0 / 160.0 / _REFERENCE_DT  # ByteTrack's per-frame weight, expressed per second

_MEASUREMENT = np.hstack([np.eye(4), np.zeros((4, 4))])


def xyxy_to_xyah(box: NDArray[np.floating]) -> Vector:
    x1, y1, x2, y2 = (float(v) for v in box)
    w, h = max(x2 - x1, 1e-3), max(y2 - y1, 1e-3)
    return np.array([x1 + w / 2, y1 + h / 2, w / h, h], dtype=np.float64)


def xyah_to_xyxy(state: Vector) -> Vector:
    cx, cy, a, h = state[:4]
    h = max(float(h), 1e-3)
    w = max(float(a), 1e-6) * h
    return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)


@dataclass
class BoxFilter:
    """Mean and covariance of one track's box state."""

    mean: Vector
    covariance: Matrix

    @classmethod
    def start(cls, box: NDArray[np.floating]) -> BoxFilter:
        measured = xyxy_to_xyah(box)
        h = measured[3]
        std = np.array(
            [
                2 * _POSITION_WEIGHT * h,
                2 * _POSITION_WEIGHT * h,
                1e-2,
                2 * _POSITION_WEIGHT * h,
                10 * _VELOCITY_WEIGHT * h,
                10 * _VELOCITY_WEIGHT * h,
                1e-5 / _REFERENCE_DT,
                10 * _VELOCITY_WEIGHT * h,
            ]
        )
        return cls(mean=np.concatenate([measured, np.zeros(4)]), covariance=np.diag(std**2))

    def predict(self, dt: float, *, freeze_height_rate: bool = False) -> None:
        """Advance the state by ``dt`` seconds (``dt`` <= 0 leaves it unchanged)."""
        if dt <= 0:
            return
        if freeze_height_rate:
            # A box that is not being observed should not keep growing or shrinking (ByteTrack does the same).
            self.mean[7] = 0.0
        motion = np.eye(8)
        motion[:4, 4:] = np.eye(4) * dt
        h = self.mean[3]
        scale = dt / _REFERENCE_DT
        std_pos = [_POSITION_WEIGHT * h, _POSITION_WEIGHT * h, 1e-2, _POSITION_WEIGHT * h]
        std_vel = [_VELOCITY_WEIGHT * h, _VELOCITY_WEIGHT * h, 1e-5 / _REFERENCE_DT, _VELOCITY_WEIGHT * h]
        noise = np.diag(np.square(np.array(std_pos + std_vel))) * scale
        self.mean = motion @ self.mean
        self.covariance = motion @ self.covariance @ motion.T + noise

    def update(self, box: NDArray[np.floating]) -> None:
        """Correct the state with a measured ``xyxy`` box."""
        measured = xyxy_to_xyah(box)
        h = self.mean[3]
        std = np.array([_POSITION_WEIGHT * h, _POSITION_WEIGHT * h, 1e-1, _POSITION_WEIGHT * h])
        projected_cov = _MEASUREMENT @ self.covariance @ _MEASUREMENT.T + np.diag(std**2)
        gain = np.linalg.solve(projected_cov, _MEASUREMENT @ self.covariance).T
        self.mean = self.mean + gain @ (measured - _MEASUREMENT @ self.mean)
        self.covariance = self.covariance - gain @ projected_cov @ gain.T

    @property
    def xyxy(self) -> Vector:
        return xyah_to_xyxy(self.mean)

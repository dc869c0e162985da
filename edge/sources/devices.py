"""Openers for local devices: USB (V4L2) cameras and GStreamer pipelines.

GStreamer on a Jetson: hardware H.264/H.265 decoding goes through
``nvv4l2decoder``. A pipeline for an RTSP camera, as ``source.uri`` with
``kind: gstreamer``::

    rtspsrc location=rtsp://192.168.1.64:554/stream1 latency=200 ! rtph264depay ! h264parse
    ! nvv4l2decoder ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR
    ! appsink drop=true max-buffers=1 sync=false

(``drop=true max-buffers=1`` keeps only the newest frame when inference is
slower than the camera.) It needs an OpenCV built with GStreamer, such as the
one JetPack ships; the PyPI wheels are built without it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import cv2

from edge.sources.capture import Capture, CaptureOpener
from streetwatch.errors import SourceError


def opencv_has_gstreamer() -> bool:
    """Whether this OpenCV build can open GStreamer pipelines."""
    match = re.search(r"GStreamer:\s*(\w+)", cv2.getBuildInformation())
    return bool(match) and match.group(1).upper() != "NO"  # type: ignore[union-attr]


def gstreamer_opener(
    pipeline: str, *, has_gstreamer: Callable[[], bool] = opencv_has_gstreamer
) -> CaptureOpener:
    """An opener for a GStreamer pipeline string; a clear :class:`SourceError` where it cannot work."""
    if not has_gstreamer():
        raise SourceError(
            "source.kind 'gstreamer' needs an OpenCV built with GStreamer, and this one is not "
            "(cv2.getBuildInformation() reports 'GStreamer: NO'). On a Jetson use JetPack's OpenCV "
            "(python3-opencv) instead of the opencv-python wheel; elsewhere use kind 'stream' for "
            "rtsp/http URLs, which goes through FFmpeg."
        )
    if "appsink" not in pipeline.rsplit("!", 1)[-1]:
        raise SourceError(
            f"GStreamer pipeline must end in an appsink element so OpenCV can pull frames, got: {pipeline!r}"
        )

    def open_pipeline() -> Capture:
        return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)

    return open_pipeline


def usb_device_index(uri: str) -> int:
    """The V4L2 index of a USB camera given as ``0`` or ``/dev/video0`` (or a udev symlink to one).

    >>> usb_device_index("2")
    2
    """
    text = uri.strip()
    if text.isdigit():
        return int(text)
    path = Path(text)
    match = re.fullmatch(r"video(\d+)", path.resolve().name) if path.exists() else None
    if match is None:
        match = re.fullmatch(r"/dev/video(\d+)", text)
    if match is None:
        raise SourceError(f"USB camera {uri!r}: give a camera index (0) or a device path (/dev/video0)")
    return int(match.group(1))


def usb_opener(uri: str) -> tuple[CaptureOpener, str]:
    """An opener for a USB camera and its label; a :class:`SourceError` naming what is there if missing."""
    index = usb_device_index(uri)
    device = Path(f"/dev/video{index}")
    if sys.platform.startswith("linux") and not device.exists():
        present = sorted(str(p) for p in Path("/dev").glob("video*"))
        there = ", ".join(present) if present else "no /dev/video* device at all"
        raise SourceError(
            f"USB camera {uri!r}: {device} does not exist (connected: {there}). "
            "Check the cable and source.uri."
        )

    def open_camera() -> Capture:
        backend = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
        return cv2.VideoCapture(index, backend)

    return open_camera, f"USB camera {device}"

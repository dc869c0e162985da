"""Frame sources: video file, network stream, USB camera, GStreamer pipeline, image folder.

``open_source(config, name="cam0")`` returns a :class:`edge.interfaces.FrameSource`:
iterate it for :class:`edge.frames.Frame` objects with UTC timestamps, and
``close()`` it when done. Replays (video, images) are stamped on their own
timeline from ``start_time`` (so they line up with a GPX track, e.g. a dash-cam
log and the ``.gpx`` its logger wrote at the same time); live sources are
stamped with the wall clock when each frame is read. ``Frame.index`` is the
frame's position in its source (frame number in a file, position in the
folder, count of frames read live), so gaps show frames dropped by
``fps_limit`` or skipped as unreadable.
"""

from __future__ import annotations

from datetime import datetime, timezone

import cv2

from edge.config import SourceConfig
from edge.interfaces import FrameSource
from edge.sources.capture import Capture, CaptureOpener, Clock, Sleep, redact_url
from edge.sources.devices import gstreamer_opener, opencv_has_gstreamer, usb_opener
from edge.sources.images import ImageFolderSource
from edge.sources.live import LiveCaptureSource
from edge.sources.video import VideoFileSource
from streetwatch.errors import SourceError

__all__ = [
    "Capture",
    "CaptureOpener",
    "ImageFolderSource",
    "LiveCaptureSource",
    "VideoFileSource",
    "open_source",
    "opencv_has_gstreamer",
    "stream_opener",
]

#: Give up on a silent network camera after this long, instead of FFmpeg's much longer default.
_STREAM_TIMEOUT_MS = 10_000


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def stream_opener(url: str) -> CaptureOpener:
    """An opener for an rtsp:// or http(s):// URL through OpenCV's FFmpeg backend."""

    def open_stream() -> Capture:
        params = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            _STREAM_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            _STREAM_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)

    return open_stream


def open_source(
    config: SourceConfig,
    *,
    name: str = "cam0",
    clock: Clock = _utcnow,
    sleep: Sleep | None = None,
    opener: CaptureOpener | None = None,
) -> FrameSource:
    """Open the source the config describes.

    ``clock`` (UTC now), ``sleep`` (backoff waits) and ``opener`` (a capture
    factory replacing OpenCV, for live kinds) are there for tests. Raises
    :class:`SourceError` naming what is wrong when the source cannot be opened.
    """
    kind = config.kind
    start = config.start_time
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)  # the config documents start_time as UTC
    if kind == "images":
        return ImageFolderSource(
            config.uri,
            name=name,
            start_time=start if start is not None else clock(),
            interval_s=config.image_interval_s,
            fps_limit=config.fps_limit,
            loop=config.loop,
        )
    if kind == "video":
        return VideoFileSource(
            config.uri, name=name, start_time=start, clock=clock, fps_limit=config.fps_limit, loop=config.loop
        )
    if kind == "stream":
        if not config.uri.lower().startswith(("rtsp://", "rtsps://", "http://", "https://", "rtmp://")):
            raise SourceError(f"source.kind 'stream' needs an rtsp:// or http(s):// URL, got {config.uri!r}")
        label = f"stream {redact_url(config.uri)}"
        return LiveCaptureSource(
            opener or stream_opener(config.uri), config, name=name, label=label, clock=clock, sleep=sleep
        )
    if kind == "usb":
        if opener is None:
            opener, label = usb_opener(config.uri)
        else:
            label = f"USB camera {config.uri}"
        return LiveCaptureSource(
            opener, config, name=name, label=label, clock=clock, sleep=sleep, open_now=True
        )
    if kind == "gstreamer":
        label = "GStreamer pipeline"
        return LiveCaptureSource(
            opener or gstreamer_opener(config.uri),
            config,
            name=name,
            label=label,
            clock=clock,
            sleep=sleep,
            open_now=True,
        )
    raise SourceError(f"unknown source kind {kind!r}")

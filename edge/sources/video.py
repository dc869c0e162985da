"""A video file as a frame source.

Timestamps are the replay's start (``start_time``, else the wall clock when the
file is opened) plus the frame's position in the file: the container's
``CAP_PROP_POS_MSEC``, or ``index / fps`` where the container gives none. A
file that ends early (truncated, damaged) yields the frames up to the damage and
then ends cleanly with one warning; ``loop`` starts over with the timeline
continuing, so a looped demo never goes back in time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import cv2

from edge.frames import Frame
from edge.sources.capture import Capture, Clock, as_bgr
from edge.sources.pacing import FrameRateLimiter
from streetwatch.errors import SourceError

log = logging.getLogger(__name__)

#: Failed reads in a row, before the file's known end, that we try to skip past before giving up.
_MAX_SKIPPED_READS = 5
#: Assumed when the container does not state a frame rate.
_FALLBACK_FPS = 25.0


def _open_file(path: str) -> Capture:
    return cv2.VideoCapture(path)


class VideoFileSource:
    """Frames of a video file, with timestamps from the file's own timeline."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "cam0",
        start_time: datetime | None,
        clock: Clock,
        fps_limit: float | None = None,
        loop: bool = False,
        opener: Callable[[str], Capture] = _open_file,
    ) -> None:
        self.name = name
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"video file {self.path} does not exist (source.uri of camera {name!r})")
        self._opener = opener
        self._loop = loop
        self._fps_limit = fps_limit
        self._start = start_time if start_time is not None else clock()
        self._capture: Capture | None = self._open()

    def _open(self) -> Capture:
        capture = self._opener(str(self.path))
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"cannot decode video file {self.path}: not a video OpenCV/FFmpeg can read")
        return capture

    def __iter__(self) -> Iterator[Frame]:
        limiter = FrameRateLimiter(self._fps_limit)
        index = 0
        offset = 0.0  # seconds added to the file's timeline by previous loops
        while self._capture is not None:
            capture = self._capture
            fps = capture.get(cv2.CAP_PROP_FPS)
            fps = fps if math.isfinite(fps) and fps > 0 else _FALLBACK_FPS
            expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
            read_in_pass = 0
            last_pos = -1.0
            skipped = 0
            while True:
                ok, image = capture.read()
                bgr = as_bgr(image) if ok else None
                if bgr is None:
                    if ok:
                        log.warning("video %s: frame %d is not a BGR image; skipped", self.path, read_in_pass)
                    if read_in_pass + skipped < expected - 1 and skipped < _MAX_SKIPPED_READS:
                        skipped += 1
                        continue
                    break
                skipped = 0
                pos = self._position_s(capture, read_in_pass, fps, last_pos)
                last_pos = pos
                read_in_pass += 1
                timestamp = self._start + timedelta(seconds=offset + pos)
                if limiter.keep(timestamp):
                    yield Frame(image=bgr, timestamp=timestamp, index=index, source=self.name)
                index += 1
            if expected > 0 and read_in_pass < expected:
                log.warning(
                    "video %s ended after %d of %d frames: the file looks truncated or damaged",
                    self.path,
                    read_in_pass,
                    expected,
                )
            if not self._loop or read_in_pass == 0 or self._capture is None:
                break
            offset += last_pos + 1.0 / fps
            capture.release()
            self._capture = self._open()
        self.close()

    @staticmethod
    def _position_s(capture: Capture, frame_in_pass: int, fps: float, last_pos: float) -> float:
        """Seconds from the file's start to this frame; falls back to index / fps where msec is unusable."""
        msec = capture.get(cv2.CAP_PROP_POS_MSEC)
        pos = msec / 1000.0 if math.isfinite(msec) and msec >= 0 else -1.0
        if pos <= last_pos or (pos == 0 and frame_in_pass > 0):
            pos = max(frame_in_pass / fps, last_pos + 1.0 / fps)
        return pos

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

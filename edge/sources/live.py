"""Live sources (network stream, USB camera, GStreamer pipeline): wall-clock timestamps and reconnects.

When a live source stops delivering, it is released and reopened with an
exponential backoff (``reconnect_initial_s`` doubling up to ``reconnect_max_s``),
and gives up with a :class:`SourceError` after ``max_reconnects`` failed attempts
in a row. Logging is one line per change of state (lost, back, gave up), never
one per retry, so an hour in a dead zone does not flood the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import cv2

from edge.config import SourceConfig
from edge.frames import Frame
from edge.sources.capture import Capture, CaptureOpener, Clock, Sleep, as_bgr
from edge.sources.pacing import FrameRateLimiter
from streetwatch.errors import SourceError

log = logging.getLogger(__name__)

#: Frames in a row that decode to garbage before the source is treated as lost.
_MAX_BAD_FRAMES = 50


class LiveCaptureSource:
    """Frames from a capture that may drop out; timestamps from ``clock`` at read time.

    ``label`` names the source in logs and errors (credentials already hidden).
    With ``open_now`` the first open happens in the constructor and a failure is
    a :class:`SourceError` (a USB camera that is not there is a configuration
    problem); otherwise a source that is down at start is retried like a lost one
    (a network camera may boot after the box).
    """

    def __init__(
        self,
        opener: CaptureOpener,
        config: SourceConfig,
        *,
        name: str,
        label: str,
        clock: Clock,
        sleep: Sleep | None = None,
        open_now: bool = False,
    ) -> None:
        self.name = name
        self.label = label
        self._opener = opener
        self._config = config
        self._clock = clock
        self._closed = threading.Event()
        # Waiting on the event lets close() from another thread cut a backoff short.
        self._sleep: Sleep = sleep if sleep is not None else self._wait_unless_closed
        self._capture: Capture | None = None
        self._iterating = False
        if open_now:
            capture = self._try_open()
            if capture is None:
                raise SourceError(f"cannot open {label}")
            self._capture = capture

    def _wait_unless_closed(self, seconds: float) -> None:
        self._closed.wait(seconds)

    def _try_open(self) -> Capture | None:
        try:
            capture = self._opener()
        except (cv2.error, OSError) as exc:
            log.debug("%s: open failed: %s", self.label, exc)
            return None
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def __iter__(self) -> Iterator[Frame]:
        limiter = FrameRateLimiter(self._config.fps_limit)
        index = 0
        bad_frames = 0
        self._iterating = True
        try:
            if self._capture is None and not self._closed.is_set():
                self._capture = self._try_open()
                if self._capture is None:
                    log.warning("%s is unavailable; retrying with backoff", self.label)
                    self._capture = self._reconnect()
            while self._capture is not None and not self._closed.is_set():
                ok, image = self._capture.read()
                bgr = as_bgr(image) if ok else None
                if bgr is None and ok and bad_frames < _MAX_BAD_FRAMES:
                    bad_frames += 1
                    log.warning("%s: frame %d is not a BGR image; skipped", self.label, index)
                    continue
                if bgr is None:
                    if self._closed.is_set():
                        break
                    log.warning(
                        "%s lost; reconnecting with backoff (at most every %.0f s)",
                        self.label,
                        self._config.reconnect_max_s,
                    )
                    self._capture.release()
                    self._capture = None
                    bad_frames = 0
                    self._capture = self._reconnect()
                    continue
                bad_frames = 0
                timestamp = self._clock()
                if limiter.keep(timestamp):
                    yield Frame(image=bgr, timestamp=timestamp, index=index, source=self.name)
                index += 1
        finally:
            self._iterating = False
            self._release()

    def _reconnect(self) -> Capture | None:
        """Reopen with exponential backoff; ``None`` if closed meanwhile; raise after too many failures."""
        cfg = self._config
        wait = cfg.reconnect_initial_s
        failures = 0
        waited = 0.0
        while not self._closed.is_set():
            if cfg.max_reconnects is not None and failures >= cfg.max_reconnects:
                raise SourceError(
                    f"{self.label}: gave up after {failures} failed reconnect attempts in a row "
                    f"(source.max_reconnects = {cfg.max_reconnects})"
                )
            self._sleep(wait)
            waited += wait
            if self._closed.is_set():
                return None
            capture = self._try_open()
            if capture is not None:
                log.info("%s is back after %d attempt(s), %.0f s", self.label, failures + 1, waited)
                return capture
            failures += 1
            wait = min(wait * 2, cfg.reconnect_max_s)
            log.debug("%s: reconnect attempt %d failed; next in %.1f s", self.label, failures, wait)
        return None

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def close(self) -> None:
        """Stop: ends an ongoing backoff wait; the capture is released now or when the reader next wakes."""
        self._closed.set()
        if not self._iterating:
            self._release()

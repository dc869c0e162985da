"""A folder of images replayed as a frame source (a dash-cam log, or the shipped samples).

Images play in natural name order (``img2`` before ``img10``). Image ``i``
(its position in that order, counting unreadable files too, so a bad file never
shifts the timeline off a GPX track) is stamped ``start_time + i * image_interval_s``;
with ``loop`` the timeline continues past the end. An unreadable or corrupt
file (including a JPEG cut short, which a decoder would half-paint grey) is
skipped with a warning naming it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.frames import Frame
from edge.sources.capture import as_bgr
from edge.sources.pacing import FrameRateLimiter
from streetwatch.errors import SourceError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers by value.

    >>> sorted(["img10.jpg", "img2.jpg", "IMG1.jpg"], key=natural_key)
    ['IMG1.jpg', 'img2.jpg', 'img10.jpg']
    """
    parts = re.split(r"(\d+)", name.lower())
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts if p)


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, in natural name order."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=lambda p: natural_key(p.name))


def decode_image(data: bytes) -> NDArray[np.uint8] | None:
    """Decode image bytes to BGR; ``None`` when the bytes are not a complete image."""
    if data.startswith(_JPEG_START) and _JPEG_END not in data:
        # Some OpenCV builds (4.x, as on Jetson) decode a JPEG cut short, padding it with grey and only
        # warning on stderr. No end-of-image marker anywhere means cut short. (Not "in the last bytes":
        # cameras may append trailers after the marker.)
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    if buffer.size == 0:
        return None
    return as_bgr(cv2.imdecode(buffer, cv2.IMREAD_COLOR))


class ImageFolderSource:
    """Images of a folder as frames, stamped on a fixed interval from ``start_time``."""

    def __init__(
        self,
        folder: str | Path,
        *,
        name: str = "cam0",
        start_time: datetime,
        interval_s: float = 1.0,
        fps_limit: float | None = None,
        loop: bool = False,
    ) -> None:
        self.name = name
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"image folder {self.folder} does not exist (source.uri of camera {name!r})")
        self.files = list_images(self.folder)
        if not self.files:
            suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
            raise SourceError(f"image folder {self.folder} holds no images ({suffixes})")
        if start_time.tzinfo is None:
            raise SourceError("images source: start_time must carry a timezone (UTC)")
        self._start = start_time
        self._interval = interval_s
        self._fps_limit = fps_limit
        self._loop = loop
        self._closed = False
        self.skipped: set[Path] = set()  # files found unreadable (warned about once)

    def __iter__(self) -> Iterator[Frame]:
        limiter = FrameRateLimiter(self._fps_limit)
        position = 0
        while not self._closed:
            readable = 0
            for path in self.files:
                if self._closed:
                    return
                i = position
                position += 1
                timestamp = self._start + timedelta(seconds=i * self._interval)
                if not limiter.keep(timestamp):
                    continue
                image = self._read(path)
                if image is None:
                    continue
                readable += 1
                yield Frame(image=image, timestamp=timestamp, index=i, source=self.name)
            if not self._loop or readable == 0:
                if readable == 0 and self._loop:
                    log.warning("image folder %s: no readable image in a whole pass; stopping", self.folder)
                return

    def _read(self, path: Path) -> NDArray[np.uint8] | None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self._skip(path, f"cannot be read ({exc})")
            return None
        image = decode_image(data)
        if image is None:
            self._skip(path, "is corrupt or truncated")
        return image

    def _skip(self, path: Path, why: str) -> None:
        if path not in self.skipped:  # once per file, not once per loop of a demo
            log.warning("image %s %s; skipped", path, why)
            self.skipped.add(path)

    def close(self) -> None:
        self._closed = True

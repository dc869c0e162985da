"""The small slice of ``cv2.VideoCapture`` the sources use, so tests can hand in a fake."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

#: Returns "now" as a timezone-aware UTC datetime.
Clock = Callable[[], datetime]
#: Waits the given number of seconds (injectable so backoff can be tested without waiting).
Sleep = Callable[[float], None]


class Capture(Protocol):
    """What a source needs from an opened video device, file or stream."""

    def isOpened(self) -> bool: ...  # OpenCV's spelling

    def read(self) -> tuple[bool, Any]: ...  # OpenCV types the image loosely; as_bgr() checks it

    def get(self, prop_id: int) -> float: ...

    def release(self) -> None: ...


#: Opens a capture; called again for every reconnect attempt.
CaptureOpener = Callable[[], Capture]


def redact_url(uri: str) -> str:
    """Hide a password in a URL before it reaches a log line.

    >>> redact_url("rtsp://admin:secret@10.0.0.5:554/stream1")
    'rtsp://admin:***@10.0.0.5:554/stream1'
    """
    return re.sub(r"(://[^:/@\s]+):[^@/\s]*@", r"\1:***@", uri)


def as_bgr(image: Any) -> NDArray[np.uint8] | None:
    """A frame as ``uint8`` BGR (H, W, 3), converting grey or BGRA; ``None`` when it is not an image."""
    if image is None or not isinstance(image, np.ndarray) or image.size == 0 or image.dtype != np.uint8:
        return None
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2))
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 1:
        return np.ascontiguousarray(np.repeat(image, 3, axis=2))
    return None

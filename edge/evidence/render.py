"""Evidence pictures: the frame with the box and label drawn, and a crop with context around the box."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from streetwatch.errors import StorageError

Image = NDArray[np.uint8]
_BOX_COLOUR = (0, 0, 255)  # BGR red: stands out on streets (grey, green, brown)
_TEXT_COLOUR = (255, 255, 255)


def downscale(image: Image, max_width: int) -> tuple[Image, float]:
    """Shrink to at most ``max_width`` pixels wide; return the image and the scale applied."""
    height, width = image.shape[:2]
    if width <= max_width:
        return image, 1.0
    scale = max_width / width
    size = (max_width, max(1, round(height * scale)))
    small: Image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return small, scale


def annotate(image: Image, box: Sequence[float], label: str) -> Image:
    """A copy of ``image`` with ``box`` (pixels of ``image``) and ``label`` drawn (Hershey font, no files)."""
    out = image.copy()
    height, width = out.shape[:2]
    thickness = max(2, round(max(width, height) / 400))
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    cv2.rectangle(out, (x1, y1), (x2, y2), _BOX_COLOUR, thickness)
    font_scale = max(0.5, max(width, height) / 1200)
    (tw, th), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    # Label above the box when there is room, inside it otherwise.
    top = y1 - th - baseline - 4 if y1 - th - baseline - 4 >= 0 else y1
    cv2.rectangle(out, (x1, top), (min(width - 1, x1 + tw + 6), top + th + baseline + 4), _BOX_COLOUR, -1)
    cv2.putText(
        out, label, (x1 + 3, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale, _TEXT_COLOUR, 1, cv2.LINE_AA
    )
    return out


def crop(image: Image, box: Sequence[float], margin: float, max_side: int) -> Image:
    """The box plus ``margin`` (a fraction of its size) on each side, shrunk to ``max_side`` at most."""
    height, width = image.shape[:2]
    x1, y1, x2, y2 = (float(v) for v in box)
    mx, my = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - mx)), max(0, int(y1 - my))
    right, bottom = min(width, int(np.ceil(x2 + mx))), min(height, int(np.ceil(y2 + my)))
    if right <= left or bottom <= top:
        raise ValueError(f"box {list(box)} does not overlap the {width}x{height} image")
    piece = image[top:bottom, left:right]
    longest = max(piece.shape[:2])
    if longest > max_side:
        scale = max_side / longest
        size = (max(1, round(piece.shape[1] * scale)), max(1, round(piece.shape[0] * scale)))
        piece = np.asarray(cv2.resize(piece, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)
    return np.ascontiguousarray(piece)


def encode_jpeg(image: Image, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise StorageError(f"could not encode a {image.shape} evidence image as JPEG")
    return buffer.tobytes()

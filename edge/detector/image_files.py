"""Image files for spot checks: expand folders, read an image or say clearly why not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from streetwatch.errors import SourceError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"


@dataclass(frozen=True)
class ImageList:
    """Images found, in order, and the given paths that were neither an image file nor a folder."""

    images: list[Path]
    missing: list[Path]


def expand_image_paths(paths: Sequence[str | Path]) -> ImageList:
    """Files as given; folders replaced by the images directly inside them, sorted by name."""
    images: list[Path] = []
    missing: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            images.extend(
                sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            )
        elif path.is_file():
            images.append(path)
        else:
            missing.append(path)
    return ImageList(images=images, missing=missing)


def read_image(path: Path) -> NDArray[np.uint8]:
    """A BGR uint8 image; ``SourceError`` saying why when the file is missing, truncated or not an image."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise SourceError(f"{path} is empty")
    # Some OpenCV builds decode a truncated JPEG into a half-grey picture with only a console
    # warning; a JPEG without its end-of-image marker is refused here instead.
    if data.startswith(_JPEG_START) and _JPEG_END not in data[2:]:
        raise SourceError(f"{path} is a truncated JPEG (no end-of-image marker)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"{path} is not an image OpenCV can decode (corrupt or unsupported format)")
    return np.asarray(image, dtype=np.uint8)

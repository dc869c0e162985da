"""Open image files the way an importer needs: size, and a full decode to catch broken files.

A truncated JPEG still opens and reports its size; only decoding every pixel shows that its
end is missing (OpenCV then silently pads with grey). Pillow raises instead, so we decode with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from streetwatch.errors import DatasetError

#: File name endings importers accept as images (lower case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class ImageSize:
    width: int
    height: int


class ImageReadError(DatasetError):
    """An image file is missing or cannot be decoded; the message says which and why."""


def read_image_size(path: Path, *, full_decode: bool = True) -> ImageSize:
    """Size of the image at ``path``; with ``full_decode`` every pixel is decoded to prove the file whole."""
    if not path.is_file():
        raise ImageReadError(f"no such image file {path}")
    try:
        with warnings.catch_warnings():
            # A broken file must become our error, never a warning that pytest turns into a failure.
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                size = ImageSize(*image.size)
                if full_decode:
                    image.load()
    except UnidentifiedImageError:
        raise ImageReadError(f"{path} is not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path} cannot be decoded ({exc}); the file is truncated or corrupt") from None
    if size.width <= 0 or size.height <= 0:
        raise ImageReadError(f"{path} has an empty size {size.width}x{size.height}")
    return size


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES

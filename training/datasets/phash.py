"""Perceptual hashes of images, for finding near-duplicates (augmented copies, re-encodes, resizes).

Two classic 64-bit hashes, both computed on a grayscale thumbnail so that exposure changes,
JPEG re-compression and resizing barely move them:

* ``dhash``: the sign of horizontal gradients on a 9×8 thumbnail. Cheap, robust to exposure.
* ``phash``: the sign of the 8×8 lowest DCT frequencies of a 32×32 thumbnail against their
  median. More tolerant of small geometric changes (mild shear, crop) than ``dhash``.

Hashes are ``numpy.uint64`` so thousands of them compare at once with :func:`hamming_matrix`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from streetwatch.errors import DatasetError

HASH_BITS = 64
_BIT_WEIGHTS = (np.uint64(1) << np.arange(64, dtype=np.uint64)).astype(np.uint64)


def _pack_bits(bits: npt.NDArray[np.bool_]) -> np.uint64:
    return np.uint64(np.sum(_BIT_WEIGHTS[bits.ravel()], dtype=np.uint64))


def _gray(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if image.ndim == 2:
        return image
    gray: npt.NDArray[np.uint8] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # type: ignore[assignment]
    return gray


def dhash(image: npt.NDArray[np.uint8]) -> np.uint64:
    """Difference hash of a BGR or grayscale image: 64 bits, one per adjacent-pixel comparison."""
    small = cv2.resize(_gray(image), (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return _pack_bits(small[:, 1:] > small[:, :-1])


def phash(image: npt.NDArray[np.uint8]) -> np.uint64:
    """DCT hash of a BGR or grayscale image: 64 low-frequency coefficients against their median."""
    small = cv2.resize(_gray(image), (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
    low = cv2.dct(small)[:8, :8]
    # The DC term only says how bright the image is; leave it out of the median so that
    # an exposure change cannot flip the other bits.
    median = float(np.median(low.ravel()[1:]))
    return _pack_bits(low > median)


def hash_file(path: Path, kind: str = "phash") -> np.uint64:
    """Hash an image file; raise :class:`DatasetError` naming the file when it cannot be decoded."""
    image: npt.NDArray[np.uint8] | None = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)  # type: ignore[assignment]
    if image is None:
        raise DatasetError(f"cannot decode image {path} for hashing")
    if kind == "phash":
        return phash(image)
    if kind == "dhash":
        return dhash(image)
    raise DatasetError(f"unknown hash kind {kind!r}; use 'phash' or 'dhash'")


def hamming_matrix(a: npt.NDArray[np.uint64], b: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint8]:
    """Pairwise Hamming distances between two vectors of 64-bit hashes, shape ``(len(a), len(b))``."""
    xor = np.bitwise_xor(a[:, None], b[None, :])
    as_bytes = xor.view(np.uint8).reshape(len(a), len(b), 8)
    return np.unpackbits(as_bytes, axis=2).sum(axis=2, dtype=np.uint8)

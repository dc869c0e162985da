"""An appearance fingerprint of a signboard crop, and how alike two of them are.

    fp = fingerprint(jpeg_bytes)            # from the crop JPEG the box sent
    similarity(fp, other)                   # 0 (unlike) .. 1 (the same picture)

A patrol sees one sign from a slightly different place each pass: another scale, another
angle, other light, a box drawn a little wider or narrower, another JPEG encoding. What stays
is the sign's colours and its coarse layout (where the dark letters and the bright panel
are, which way its strokes run). The fingerprint keeps exactly those, in about 1 KB of JSON
of small integers, four parts:

* ``hs``: a hue x saturation histogram (12 x 4 bins) of the crop's central part, pixels
  too dark or too grey to have a reliable hue counted in one extra "grey" bin. Hue and
  saturation barely move with brightness; the centre ignores a loose box's background.
* ``dct``: a 64-bit perceptual hash: the signs of the lowest 8 x 8 DCT coefficients of the
  crop in grey, resized to 32 x 32 after its brightness is normalised.
* ``grad``: gradient orientations (8 bins) in 2 x 4 cells of the crop, weighted by strength:
  where the lettering runs which way. Grey signs whose colours say little differ here.
* ``lab``: the crop as 4 x 8 cells of CIELAB colour (a, b as they are; lightness normalised):
  which colour sits where.

``similarity`` is a weighted mean of the four part similarities (colours 1, hash 2,
gradients 2, colour layout 1). Measured on 283 real shop-sign crops
(``bench/sign_fingerprint.py``, 6 simulated re-sightings each against every other sign): at
its best threshold (0.545) the four parts together miss 0.4 % of re-sightings and match 0.4 %
of other signs, against 1.2 % / 1.3 % for colours and hash alone and 7 % / 7 % for colours
alone; the weights were chosen on these same crops. ``SignSettings.min_similarity`` (0.54)
sits at that threshold.

OpenCV and numpy only: no model to ship, a few milliseconds per crop.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from streetwatch.errors import PayloadError

#: Stored with the fingerprint: a register holding older ones can tell them apart.
VERSION = 1
_HUE_BINS = 12
_SAT_BINS = 4
#: Below this saturation (0..255) or value, a pixel's hue is noise: it goes to the grey bin.
_MIN_SAT = 40
_MIN_VAL = 40
#: The share of the crop's sides kept around its centre for the histogram.
_CENTRE = 0.8
_HASH_SIDE = 32
#: Weights of colours, DCT hash, gradients and colour layout (chosen on bench/sign_fingerprint.py).
_WEIGHTS = (1.0, 2.0, 2.0, 1.0)
#: Colour-layout values are stored as integers: a, b minus 128, and lightness z-scores x 20.
_LAB_SCALE = 20.0


class FingerprintError(PayloadError):
    """The crop cannot be fingerprinted (not an image, or empty)."""


def fingerprint(jpeg: bytes) -> dict[str, Any]:
    """The fingerprint of the crop ``jpeg`` (a JSON-ready dict); raise :class:`FingerprintError`."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise FingerprintError("the crop is not a decodable image")
    return fingerprint_image(image)


def fingerprint_image(image: np.ndarray) -> dict[str, Any]:
    """The fingerprint of a decoded BGR image (see the module docstring)."""
    if image.ndim != 3 or image.shape[0] < 4 or image.shape[1] < 4:
        raise FingerprintError(f"the crop is too small or not colour: shape {image.shape}")
    height, width = image.shape[:2]
    return {
        "v": VERSION,
        "hs": _hue_saturation(_centre(image)),
        "dct": _dct_hash(image),
        "grad": _gradients(image),
        "lab": _colour_layout(image),
        "aspect": round(width / height, 3),
    }


def similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """How alike two fingerprints are: 0 (unlike) .. 1 (the same picture)."""
    for fp in (a, b):
        if fp.get("v") != VERSION:
            raise FingerprintError(f"fingerprint version {fp.get('v')!r}; expected {VERSION}")
    parts = (
        colour_similarity(a, b) * _WEIGHTS[0]
        + layout_similarity(a, b) * _WEIGHTS[1]
        + gradient_similarity(a, b) * _WEIGHTS[2]
        + colour_layout_similarity(a, b) * _WEIGHTS[3]
    )
    return round(parts / sum(_WEIGHTS), 4)


def colour_similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Histogram intersection of the hue x saturation histograms: 0..1."""
    ha = np.asarray(a["hs"], dtype=np.float64)
    hb = np.asarray(b["hs"], dtype=np.float64)
    return float(np.minimum(ha / max(ha.sum(), 1.0), hb / max(hb.sum(), 1.0)).sum())


def layout_similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Share of equal DCT-hash bits, rescaled so that chance (32 of 64) is 0: 0..1."""
    equal_bits = 64 - bin(int(a["dct"], 16) ^ int(b["dct"], 16)).count("1")
    return max(0.0, (equal_bits - 32) / 32)


def gradient_similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Cosine of the gradient-orientation histograms: 0..1."""
    ga = np.asarray(a["grad"], dtype=np.float64)
    gb = np.asarray(b["grad"], dtype=np.float64)
    norm = float(np.linalg.norm(ga) * np.linalg.norm(gb))
    return float(ga @ gb / norm) if norm > 0 else 0.0


def colour_layout_similarity(a: dict[str, Any], b: dict[str, Any]) -> float:
    """1 minus the RMS difference of the colour-layout cells (in units of 20 a/b steps or of
    one lightness standard deviation), floored at 0."""
    la = np.asarray(a["lab"], dtype=np.float64) / _LAB_SCALE
    lb = np.asarray(b["lab"], dtype=np.float64) / _LAB_SCALE
    return max(0.0, 1.0 - float(np.sqrt(np.mean((la - lb) ** 2))))


def _centre(image: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    dy = int(height * (1 - _CENTRE) / 2)
    dx = int(width * (1 - _CENTRE) / 2)
    return image[dy : height - dy, dx : width - dx]


def _hue_saturation(image: np.ndarray) -> list[int]:
    """Histogram counts in per-mille: ``_HUE_BINS * _SAT_BINS`` coloured bins, then one grey bin."""
    small = cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int32)
    hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    grey = (sat < _MIN_SAT) | (val < _MIN_VAL)
    hue_bin = np.minimum(hue * _HUE_BINS // 180, _HUE_BINS - 1)
    sat_bin = np.minimum((sat - _MIN_SAT) * _SAT_BINS // (256 - _MIN_SAT), _SAT_BINS - 1)
    bins = np.where(grey, _HUE_BINS * _SAT_BINS, hue_bin * _SAT_BINS + np.maximum(sat_bin, 0))
    counts = np.bincount(bins, minlength=_HUE_BINS * _SAT_BINS + 1).astype(np.float64)
    return [round(float(c)) for c in counts * 1000 / counts.sum()]


def _dct_hash(image: np.ndarray) -> str:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (_HASH_SIDE, _HASH_SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    # Brightness and contrast normalised: a sign in shade and in sun hashes alike.
    small = (small - small.mean()) / max(float(small.std()), 1.0)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    bits[0] = False  # the mean (DC) term says nothing once brightness is normalised
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def _gradients(image: np.ndarray) -> list[int]:
    """Gradient-orientation histograms (8 bins) of 2 x 4 cells, L2-normalised, as 0..255 integers."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (96, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1)
    magnitude = np.hypot(gx, gy)
    orientation = np.minimum(((np.arctan2(gy, gx) % np.pi) / np.pi * 8).astype(np.int64), 7)
    cells = []
    for row in range(2):
        for col in range(4):
            part = (slice(row * 24, (row + 1) * 24), slice(col * 24, (col + 1) * 24))
            cells.append(np.bincount(orientation[part].ravel(), weights=magnitude[part].ravel(), minlength=8))
    histogram = np.concatenate(cells).astype(np.float64)
    unit = histogram / max(float(np.linalg.norm(histogram)), 1e-6)
    return [round(float(v) * 255) for v in unit]


def _colour_layout(image: np.ndarray) -> list[int]:
    """4 x 8 cells of CIELAB: a and b minus 128, then lightness as z-scores x 20 (light-independent)."""
    cells = cv2.resize(image, (8, 4), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(cells, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float64)
    lightness = lab[:, 0]
    z = (lightness - lightness.mean()) / (float(lightness.std()) + 1.0)
    values = np.concatenate([lab[:, 1] - 128, lab[:, 2] - 128, z * _LAB_SCALE])
    return [round(float(v)) for v in values]

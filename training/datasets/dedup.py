"""Group near-duplicate images: the same photo re-encoded, resized, cropped, sheared or re-exposed,
and near-identical views of one scene.

Two stages, because a 64-bit global hash alone is not enough on real data: crops and shear move
the hash of a copy as far as the hash of an unrelated photo (on the garbage set, some copies
differ by 32 of 64 pHash bits while different bins on white backgrounds differ by 4 dHash bits).

1. Candidates: each image's nearest neighbours by pHash, by dHash, and by hue-saturation
   histogram (which a crop or shear barely changes).
2. Proof: a pair is accepted outright when both hashes are nearly equal; otherwise ORB features
   must match under one affine transform (RANSAC) with enough inliers spread over enough of the
   image, which a re-framed copy passes and two photos sharing only a logo do not.

Groups are the connected components of accepted pairs (union-find).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from training.datasets.phash import dhash, hamming_matrix, phash

log = logging.getLogger(__name__)

_THUMB = 320  # side of the square thumbnail features are computed on
_MATCHER = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)


@dataclass(frozen=True)
class DuplicateSettings:
    exact_distance: int = 6  # both hashes within this many bits: the same picture, no proof needed
    neighbours: int = 5  # candidates per image: this many nearest by pHash, by dHash and by colour
    max_candidate_distance: int = 28  # a candidate farther than this (in the hash that chose it) is skipped
    min_inliers: int = 25  # ORB matches consistent with one affine transform
    # Convex hull of the inliers as a fraction of the image, in both images. Copies of one photo on
    # the garbage set cover 0.05-0.25; different bins that share only a printed logo cover 0.03.
    min_inlier_area: float = 0.05


@dataclass(frozen=True)
class DuplicatePair:
    first: int
    second: int
    phash_distance: int
    dhash_distance: int
    inliers: int  # -1 when accepted on hashes alone


@dataclass(frozen=True)
class DuplicateGroups:
    """``group_of[i]`` is the group id of image ``i``; ids are 0..len(groups)-1 in first-seen order."""

    group_of: tuple[int, ...]
    pairs: tuple[DuplicatePair, ...]

    @property
    def groups(self) -> list[list[int]]:
        members: dict[int, list[int]] = {}
        for index, group in enumerate(self.group_of):
            members.setdefault(group, []).append(index)
        return [members[g] for g in sorted(members)]

    def duplicate_groups(self) -> list[list[int]]:
        """Only the groups with more than one image."""
        return [g for g in self.groups if len(g) > 1]

    @property
    def images_in_duplicate_groups(self) -> int:
        return sum(len(g) for g in self.duplicate_groups())


@dataclass
class _Features:
    phash: npt.NDArray[np.uint64]
    dhash: npt.NDArray[np.uint64]
    colour: npt.NDArray[np.float32]  # L1-normalised hue-saturation histograms, one row per image
    keypoints: list[npt.NDArray[np.float32]]
    descriptors: list[npt.NDArray[np.uint8] | None]


def _features(paths: Sequence[Path]) -> _Features:
    orb = cv2.ORB_create(nfeatures=300)  # type: ignore[attr-defined]
    p_hashes, d_hashes, colours, keypoints, descriptors = [], [], [], [], []
    for path in paths:
        image: npt.NDArray[np.uint8] | None = cv2.imread(str(path), cv2.IMREAD_COLOR)  # type: ignore[assignment]
        if image is None:
            # Importers already dropped undecodable images; this guards direct callers.
            image = np.zeros((_THUMB, _THUMB, 3), np.uint8)
            log.warning("cannot decode %s for duplicate search; treated as blank", path)
        gray: npt.NDArray[np.uint8] = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # type: ignore[assignment]
        hsv = cv2.cvtColor(cv2.resize(image, (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2HSV)
        histogram = cv2.calcHist([hsv], [0, 1], None, [18, 8], [0, 180, 0, 256]).ravel()
        colours.append(histogram / max(float(histogram.sum()), 1.0))
        p_hashes.append(phash(gray))
        d_hashes.append(dhash(gray))
        thumb = cv2.resize(gray, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA)
        points, desc = orb.detectAndCompute(thumb, None)
        keypoints.append(np.array([p.pt for p in points], dtype=np.float32).reshape(-1, 2))
        descriptors.append(desc)
    return _Features(
        np.array(p_hashes, dtype=np.uint64),
        np.array(d_hashes, dtype=np.uint64),
        np.array(colours, dtype=np.float32),
        keypoints,
        descriptors,
    )


def _hull_fraction(points: npt.NDArray[np.float32]) -> float:
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points))) / (_THUMB * _THUMB)


def count_inliers(features: _Features, i: int, j: int, settings: DuplicateSettings) -> int:
    """ORB matches between images i and j that one affine transform explains, 0 unless they cover
    at least ``min_inlier_area`` of both images."""
    di, dj = features.descriptors[i], features.descriptors[j]
    if di is None or dj is None or len(di) < 8 or len(dj) < 8:
        return 0
    matches = [m for m in _MATCHER.match(di, dj) if m.distance < 50]
    if len(matches) < settings.min_inliers:
        return 0
    a = features.keypoints[i][[m.queryIdx for m in matches]]
    b = features.keypoints[j][[m.trainIdx for m in matches]]
    _, mask = cv2.estimateAffine2D(a, b, ransacReprojThreshold=4.0)
    if mask is None:
        return 0
    keep = mask.ravel().astype(bool)
    if min(_hull_fraction(a[keep]), _hull_fraction(b[keep])) < settings.min_inlier_area:
        return 0
    return int(keep.sum())


def find_duplicate_groups(
    paths: Sequence[Path], settings: DuplicateSettings | None = None
) -> DuplicateGroups:
    """Group the images at ``paths`` (indices into ``paths``); unrelated images stay alone."""
    settings = settings or DuplicateSettings()
    n = len(paths)
    if n == 0:
        return DuplicateGroups((), ())
    features = _features(paths)
    pairs = []
    for i, j in _candidate_pairs(features, settings):
        p_dist = int(hamming_matrix(features.phash[i : i + 1], features.phash[j : j + 1])[0, 0])
        d_dist = int(hamming_matrix(features.dhash[i : i + 1], features.dhash[j : j + 1])[0, 0])
        if p_dist <= settings.exact_distance and d_dist <= settings.exact_distance:
            pairs.append(DuplicatePair(i, j, p_dist, d_dist, -1))
            continue
        inliers = count_inliers(features, i, j, settings)
        if inliers >= settings.min_inliers:
            pairs.append(DuplicatePair(i, j, p_dist, d_dist, inliers))
    return DuplicateGroups(_components(n, pairs), tuple(pairs))


def _candidate_pairs(features: _Features, settings: DuplicateSettings) -> list[tuple[int, int]]:
    n = len(features.phash)
    k = min(settings.neighbours, n - 1)
    candidates: set[tuple[int, int]] = set()
    if k <= 0:
        return []
    block = 128  # rows per block keeps the distance matrix small for large sets
    for measure in ("phash", "dhash", "colour"):
        for start in range(0, n, block):
            distance = _distances(features, measure, start, min(start + block, n))
            for offset, row in enumerate(distance):
                i = start + offset
                row[i] = np.inf
                for j in np.argpartition(row, k - 1)[:k]:
                    if measure == "colour" or row[j] <= settings.max_candidate_distance:
                        candidates.add((min(i, int(j)), max(i, int(j))))
    return sorted(candidates)


def _distances(features: _Features, measure: str, start: int, stop: int) -> npt.NDArray[np.float64]:
    if measure == "colour":
        rows = features.colour[start:stop]
        # L1 distance between histograms, 0 (same colours) .. 2 (disjoint colours).
        return np.abs(rows[:, None, :] - features.colour[None, :, :]).sum(axis=2).astype(np.float64)
    hashes = features.phash if measure == "phash" else features.dhash
    return hamming_matrix(hashes[start:stop], hashes).astype(np.float64)


def _components(n: int, pairs: Sequence[DuplicatePair]) -> tuple[int, ...]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for pair in pairs:
        a, b = root(pair.first), root(pair.second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    ids: dict[int, int] = {}
    return tuple(ids.setdefault(root(i), len(ids)) for i in range(n))

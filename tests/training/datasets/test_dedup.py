"""Near-duplicate grouping on real garbage photos: augmented copies together, look-alikes apart."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.datasets.dedup import DuplicateSettings, find_duplicate_groups
from training.datasets.phash import dhash, hamming_matrix, hash_file, phash

from .conftest import FIXTURES

YOLO = FIXTURES / "yolo"


def _paths():
    return sorted(p for p in YOLO.rglob("atanu_*.jpg"))


def _distance(a, b) -> int:
    return int(hamming_matrix(np.array([a], dtype=np.uint64), np.array([b], dtype=np.uint64))[0, 0])


def test_hashes_ignore_exposure_and_separate_different_photos():
    image = cv2.imread(str(YOLO / "train/images/atanu_002694.jpg"))
    brighter = np.clip(image.astype(np.float32) * 1.4 + 10, 0, 255).astype(np.uint8)
    other = cv2.imread(str(YOLO / "train/images/atanu_000019.jpg"))
    for hash_function in (phash, dhash):
        assert _distance(hash_function(image), hash_function(image)) == 0
        assert _distance(hash_function(image), hash_function(brighter)) <= 6
        assert _distance(hash_function(image), hash_function(other)) >= 16


def test_hamming_matrix_counts_differing_bits():
    a = np.array([0, 0b1011, 2**64 - 1], dtype=np.uint64)
    matrix = hamming_matrix(a, a)
    assert matrix.tolist() == [[0, 3, 64], [3, 0, 61], [64, 61, 0]]


def test_augmented_copies_group_together_and_look_alikes_stay_apart():
    paths = _paths()
    groups = find_duplicate_groups(paths)
    group_of = {p.name: g for p, g in zip(paths, groups.group_of, strict=True)}
    # Same photo with the source's augmentation (crop/shear/exposure): one group each.
    assert group_of["atanu_002694.jpg"] == group_of["atanu_002695.jpg"]
    assert group_of["atanu_002240.jpg"] == group_of["atanu_002192.jpg"]
    assert group_of["atanu_002694.jpg"] != group_of["atanu_002240.jpg"]
    # Two different green bins on white backgrounds: their dHashes are close, but they are not copies.
    singles = ["atanu_000019.jpg", "atanu_002200.jpg", "atanu_002488.jpg"]
    assert len({group_of[name] for name in singles}) == 3
    assert all(list(group_of.values()).count(group_of[name]) == 1 for name in singles)
    assert len(groups.duplicate_groups()) == 2
    assert groups.images_in_duplicate_groups == 4


def test_a_hash_threshold_alone_cannot_separate_copies_from_look_alikes():
    """Why the ORB proof exists: in dHash the two different bins are closer than a photo and its copy."""

    def distance(a: str, b: str) -> int:
        return _distance(hash_file(YOLO / a, "dhash"), hash_file(YOLO / b, "dhash"))

    copy = distance("train/images/atanu_002240.jpg", "val/images/atanu_002192.jpg")
    look_alikes = distance("train/images/atanu_002200.jpg", "val/images/atanu_002488.jpg")
    assert look_alikes < copy
    assert copy > DuplicateSettings().exact_distance


def test_identical_files_group_without_feature_matching(tmp_path):
    source = YOLO / "train/images/atanu_000019.jpg"
    copies = [tmp_path / f"copy_{i}.jpg" for i in range(2)]
    for copy in copies:
        copy.write_bytes(source.read_bytes())
    groups = find_duplicate_groups([*copies, YOLO / "train/images/atanu_002200.jpg"])
    assert groups.group_of[0] == groups.group_of[1] != groups.group_of[2]
    assert groups.pairs[0].inliers == -1  # accepted on equal hashes


@pytest.mark.parametrize("count", [0, 1])
def test_tiny_inputs(count):
    groups = find_duplicate_groups(_paths()[:count])
    assert len(groups.group_of) == count

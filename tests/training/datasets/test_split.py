from __future__ import annotations

import random
from pathlib import Path

import pytest

from streetwatch.errors import DatasetError
from training.datasets.records import LabeledImage
from training.datasets.split import split_by_groups, split_by_origin, straddling_groups


def _images(n: int, origin: list[str | None] | None = None) -> list[LabeledImage]:
    return [
        LabeledImage(Path(f"/data/img_{i:04d}.jpg"), 64, 64, (), "s", None if origin is None else origin[i])
        for i in range(n)
    ]


def _random_groups(n: int, rng: random.Random) -> list[int]:
    groups, next_id = [], 0
    while len(groups) < n:
        size = rng.choice([1, 1, 1, 2, 2, 3, 7])
        groups.extend([next_id] * size)
        next_id += 1
    return groups[:n]


@pytest.mark.parametrize("seed", range(20))
def test_no_group_straddles_train_and_val(seed):
    rng = random.Random(1000 + seed)
    n = rng.randint(20, 300)
    images, groups = _images(n), _random_groups(n, rng)
    result = split_by_groups(images, groups, val_fraction=0.2, seed=seed)
    group_of = {image.path: g for image, g in zip(images, groups, strict=True)}
    train_groups = {group_of[i.path] for i in result.train}
    val_groups = {group_of[i.path] for i in result.val}
    assert not train_groups & val_groups
    assert len(result.train) + len(result.val) == n
    assert abs(len(result.val) - 0.2 * n) <= 7  # at most one group off the target


def test_same_seed_same_split_whatever_the_input_order():
    rng = random.Random(5)
    images, groups = _images(100), _random_groups(100, rng)
    first = split_by_groups(images, groups, seed=3)
    order = list(range(100))
    random.Random(9).shuffle(order)
    shuffled = split_by_groups([images[i] for i in order], [groups[i] for i in order], seed=3)
    assert {i.path for i in first.val} == {i.path for i in shuffled.val}
    other = split_by_groups(images, groups, seed=4)
    assert {i.path for i in first.val} != {i.path for i in other.val}


def test_bad_arguments_are_named():
    with pytest.raises(DatasetError, match="val_fraction"):
        split_by_groups(_images(3), [0, 1, 2], val_fraction=1.5)
    with pytest.raises(DatasetError, match="3 images but 2 group ids"):
        split_by_groups(_images(3), [0, 1])


def test_origin_split_moves_straddling_groups_to_val():
    images = _images(5, ["train", "val", "train", "train", None])
    groups = [0, 0, 1, 2, 2]
    assert straddling_groups(images, groups) == [[0, 1], [3, 4]]
    result = split_by_origin(images, groups)
    assert [i.path.name for i in result.val] == ["img_0000.jpg", "img_0001.jpg"]
    assert [i.path.name for i in result.train] == ["img_0002.jpg", "img_0003.jpg", "img_0004.jpg"]

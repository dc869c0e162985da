"""Group-aware train/val split: near-duplicate groups never straddle train and val.

Groups are shuffled with a seeded generator and dealt to val until it holds the asked fraction of
images, so the same images, groups and seed always give the same split. Groups are ordered by
their members' paths before shuffling, so the result does not depend on the order images were read.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from streetwatch.errors import DatasetError
from training.datasets.records import LabeledImage


@dataclass(frozen=True)
class SplitResult:
    train: tuple[LabeledImage, ...]
    val: tuple[LabeledImage, ...]

    def as_splits(self) -> dict[str, tuple[LabeledImage, ...]]:
        return {"train": self.train, "val": self.val}


def split_by_groups(
    images: Sequence[LabeledImage],
    group_of: Sequence[int],
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> SplitResult:
    """Deal whole groups (``group_of[i]`` is image ``i``'s group) to val until ``val_fraction`` is met."""
    if len(images) != len(group_of):
        raise DatasetError(f"{len(images)} images but {len(group_of)} group ids")
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    members: dict[int, list[int]] = {}
    for index, group in enumerate(group_of):
        members.setdefault(group, []).append(index)
    ordered = sorted(members.values(), key=lambda idx: min(str(images[i].path) for i in idx))
    random.Random(seed).shuffle(ordered)
    target = round(val_fraction * len(images))
    val_indices: set[int] = set()
    for group_members in ordered:
        if len(val_indices) >= target:
            break
        # A big group that would overshoot the target by more than it helps goes to train instead.
        if len(val_indices) + len(group_members) - target > target - len(val_indices):
            continue
        val_indices.update(group_members)
    train = tuple(image for i, image in enumerate(images) if i not in val_indices)
    val = tuple(image for i, image in enumerate(images) if i in val_indices)
    return SplitResult(train=train, val=val)


def split_by_origin(images: Sequence[LabeledImage], group_of: Sequence[int]) -> SplitResult:
    """Keep the sources' own train/val split, but move every group that straddles it wholly to val
    (a copy of a val photo in train would inflate the val score). Images without a split go to train."""
    val_groups = {group_of[i] for i, image in enumerate(images) if image.origin_split in ("val", "test")}
    train = tuple(image for i, image in enumerate(images) if group_of[i] not in val_groups)
    val = tuple(image for i, image in enumerate(images) if group_of[i] in val_groups)
    return SplitResult(train=train, val=val)


def straddling_groups(images: Sequence[LabeledImage], group_of: Sequence[int]) -> list[list[int]]:
    """Groups whose members the sources put in different splits (leaks in the original split)."""
    splits: dict[int, set[str | None]] = {}
    members: dict[int, list[int]] = {}
    for index, image in enumerate(images):
        splits.setdefault(group_of[index], set()).add(image.origin_split)
        members.setdefault(group_of[index], []).append(index)
    return [members[g] for g, s in splits.items() if len(s) > 1]

"""The committed truck load labels: agreement maths, the final labels and the grouped split."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from streetwatch.errors import DatasetError
from streetwatch.paths import datasets_dir
from training.truck_load.agreement import cohen_kappa, compare, final_labels, read_labels
from training.truck_load.data import grouped_split, load_crops

FOLDER = datasets_dir() / "truck_load"


def test_kappa_of_textbook_cases() -> None:
    assert cohen_kappa(["a", "b", "a", "b"], ["a", "b", "a", "b"]) == 1.0
    # Agreement no better than chance: two raters who each say "a" half the time, independently.
    assert cohen_kappa(["a", "a", "b", "b"], ["a", "b", "a", "b"]) == pytest.approx(0.0)
    # 20 of 25 agree; chance agreement (15 * 16 + 10 * 9) / 625 = 0.528.
    first = ["y"] * 15 + ["n"] * 10
    second = ["y"] * 13 + ["n"] * 2 + ["y"] * 3 + ["n"] * 7
    assert cohen_kappa(first, second) == pytest.approx((0.8 - 0.528) / (1 - 0.528))


def test_the_committed_passes_and_resolutions_give_the_committed_final_labels() -> None:
    first = read_labels(FOLDER / "labels_pass1.csv")
    second = read_labels(FOLDER / "labels_pass2.csv")
    report = compare(first, second)
    assert report.crops == 843 and report.agreed == 798
    final = final_labels(first, second, FOLDER / "resolution.csv")
    with (FOLDER / "labels_final.csv").open(newline="") as handle:
        committed = {row["crop_id"]: (row["label"], row["how"]) for row in csv.DictReader(handle)}
    assert final == committed


def test_a_disagreement_without_a_resolution_is_an_error(tmp_path: Path) -> None:
    first = read_labels(FOLDER / "labels_pass1.csv")
    second = read_labels(FOLDER / "labels_pass2.csv")
    empty = tmp_path / "resolution.csv"
    empty.write_text("crop_id,pass1,pass2,final,why\n")
    with pytest.raises(DatasetError, match="has no resolution"):
        final_labels(first, second, empty)


def test_the_split_keeps_every_scene_group_on_one_side_and_is_the_committed_one() -> None:
    crops = load_crops(FOLDER)
    split = grouped_split(crops)
    sides: dict[int, set[str]] = {}
    for crop in crops:
        sides.setdefault(crop.group, set()).add(split[crop.crop_id])
    assert all(len(s) == 1 for s in sides.values())
    val = Counter(c.label for c in crops if split[c.crop_id] == "val")
    assert all(val[label] >= 5 for label in ("uncovered", "covered", "empty", "closed", "not_a_truck"))
    with (FOLDER / "split.csv").open(newline="") as handle:
        assert {row["crop_id"]: row["split"] for row in csv.DictReader(handle)} == split

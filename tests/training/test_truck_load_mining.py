"""Trucks mined from other real photos: found by the box's detectors, grouped with their copies,
and never moving the vehicle set's crops between the splits."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from streetwatch.errors import DatasetError
from streetwatch.paths import datasets_dir, repo_root
from training.truck_load.agreement import final_labels, read_labels
from training.truck_load.crops import CropRecord, read_manifest
from training.truck_load.data import LabelledCrop, grouped_split, load_crops
from training.truck_load.mine import (
    MinedCrop,
    detectors,
    keep_new,
    main,
    mine_source,
    read_mined,
    recut,
    write_mined,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GARBAGE = SHARED / "garbage"
FOLDER = datasets_dir() / "truck_load"


@pytest.mark.skipif(not GARBAGE.is_dir(), reason=f"needs the garbage photos in {GARBAGE}")
def test_a_truck_and_its_augmented_copy_are_found_and_share_one_scene_group(tmp_path: Path) -> None:
    # atanu_002690 (train) and atanu_002691 (val) are one street photo and its augmented copy,
    # both holding a garbage truck; atanu_000188 is another street with another truck.
    photos = {
        "train": ["atanu_002690.jpg", "atanu_000188.jpg"],
        "val": ["atanu_002691.jpg"],
    }
    for split, names in photos.items():
        (tmp_path / "garbage" / split / "images").mkdir(parents=True)
        for name in names:
            shutil.copy(GARBAGE / split / "images" / name, tmp_path / "garbage" / split / "images" / name)
    crops_dir = tmp_path / "crops"
    crops_dir.mkdir()
    models, fusion = detectors(repo_root() / "models")
    mined = mine_source(tmp_path, "garbage", crops_dir, models, fusion)
    group_of = {m.record.image.split("/")[-1]: m.record.group for m in mined}
    assert set(group_of) == {"atanu_002690.jpg", "atanu_002691.jpg", "atanu_000188.jpg"}
    assert group_of["atanu_002690.jpg"] == group_of["atanu_002691.jpg"]
    assert group_of["atanu_000188.jpg"] != group_of["atanu_002690.jpg"]
    assert all(m.source == "garbage" and m.record.group >= 100_000 for m in mined)
    assert all((crops_dir / f"{m.record.crop_id}.jpg").is_file() for m in mined)


def test_mined_crops_never_move_the_vehicle_sets_crops_between_splits() -> None:
    crops = [c for c in load_crops(FOLDER) if not c.mined]
    before = grouped_split(crops)
    val_group = next(c.group for c in crops if before[c.crop_id] == "val")
    train_group = next(c.group for c in crops if before[c.crop_id] == "train")
    mined = [
        LabelledCrop("vehicles_val_x_0", "uncovered", val_group, "team", "vehicles", True),
        LabelledCrop("vehicles_train_y_0", "uncovered", train_group, "team", "vehicles", True),
    ]
    mined += [LabelledCrop(f"g_{i}_0", "empty", 100_000 + i, "team", "garbage", True) for i in range(12)]
    after = grouped_split(crops + mined)
    assert {c.crop_id: after[c.crop_id] for c in crops} == before
    assert after["vehicles_val_x_0"] == "val" and after["vehicles_train_y_0"] == "train"
    new_sides = {after[c.crop_id] for c in mined[2:]}
    assert new_sides == {"train", "val"}  # new scene groups are split among themselves


def test_weaker_candidates_are_appended_after_the_labelled_crops_without_renaming_them() -> None:
    def crop(crop_id: str, image: str, box: tuple[int, int, int, int]) -> MinedCrop:
        return MinedCrop(CropRecord(crop_id, "train", image, box, 100_000, "unlabelled"), "garbage", 0.5)

    existing = [crop("garbage_train_a_0", "garbage/train/images/a.jpg", (0, 0, 100, 100))]
    # A second run numbers its own boxes from 0: one is the labelled truck again, one is new.
    found = [
        crop("garbage_train_a_0", "garbage/train/images/a.jpg", (200, 0, 300, 100)),
        crop("garbage_train_a_1", "garbage/train/images/a.jpg", (2, 1, 101, 99)),
        crop("garbage_train_b_0", "garbage/train/images/b.jpg", (0, 0, 50, 50)),
    ]
    new = keep_new(existing, found)
    assert [(m.record.crop_id, m.record.box) for m in new] == [
        ("garbage_train_a_1", (200, 0, 300, 100)),
        ("garbage_train_b_0", (0, 0, 50, 50)),
    ]


def test_the_mined_passes_and_resolutions_give_the_committed_final_labels() -> None:
    folder = FOLDER / "mined"
    first = read_labels(folder / "labels_pass1.csv")
    second = read_labels(folder / "labels_pass2.csv")
    assert set(first) == {r.crop_id for r in read_manifest(folder / "manifest.csv")}  # every mined crop
    final = final_labels(first, second, folder / "resolution.csv")
    with (folder / "labels_final.csv").open(newline="") as handle:
        committed = {row["crop_id"]: (row["label"], row["how"]) for row in csv.DictReader(handle)}
    assert final == committed


@pytest.mark.skipif(not GARBAGE.is_dir(), reason=f"needs the garbage photos in {GARBAGE}")
def test_recut_cuts_the_listed_boxes_again_without_detecting(tmp_path: Path) -> None:
    (tmp_path / "garbage" / "train" / "images").mkdir(parents=True)
    shutil.copy(GARBAGE / "train" / "images" / "atanu_000188.jpg", tmp_path / "garbage" / "train" / "images")
    first = tmp_path / "first"
    first.mkdir()
    models, fusion = detectors(repo_root() / "models")
    mined = mine_source(tmp_path, "garbage", first, models, fusion)
    assert mined
    manifest = tmp_path / "work" / "manifest.csv"
    write_mined(manifest, mined)
    work = tmp_path / "work"
    main([str(tmp_path), str(work), "--out", str(manifest), "--recut"])
    for m in mined:
        name = f"{m.record.crop_id}.jpg"
        assert (work / "crops" / name).read_bytes() == (first / name).read_bytes(), name

    # Mining again over a labelled manifest would renumber boxes under labelled ids: refused.
    with pytest.raises(SystemExit, match="--recut cuts them again"):
        main([str(tmp_path), str(work), "--out", str(manifest), "--sources", "garbage"])
    assert read_mined(manifest) == mined


def test_recut_names_a_missing_photo(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.csv"
    record = CropRecord(
        "garbage_train_gone_0", "train", "garbage/train/images/gone.jpg", (1, 2, 30, 40), 100001
    )
    write_mined(manifest, [MinedCrop(record, "garbage", 0.5)])
    with pytest.raises(DatasetError, match=r"cannot decode .*gone\.jpg"):
        recut(tmp_path, manifest, tmp_path / "crops")

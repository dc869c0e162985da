"""The team's label completion applied when the first-model recipe builds its training set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from bench.label_completion import CompletionBox
from training.datasets.records import LabeledBox, LabeledImage
from training.recipes.completion import complete_image, without_duplicates
from training.recipes.first_model import main

IMAGE = LabeledImage(
    Path("shop.jpg"),
    200,
    100,
    (LabeledBox("signboard", 10, 10, 60, 40), LabeledBox("signboard", 100, 10, 150, 40)),
    "s",
)


def test_added_boxes_join_wrong_ones_leave_and_ignore_boxes_stay_out() -> None:
    rows = [
        CompletionBox("signboard", (150.0, 50.0, 210.0, 90.0), "added"),  # overhangs the photo by 10 px
        CompletionBox("signboard", (101.0, 11.0, 150.0, 40.0), "not_a_signboard"),
        CompletionBox("signboard", (0.0, 60.0, 20.0, 80.0), "ignore"),
    ]
    counts: Counter[str] = Counter()
    done = complete_image(IMAGE, rows, counts)
    assert [(b.x1, b.y1, b.x2, b.y2) for b in done.boxes] == [(10, 10, 60, 40), (150, 50, 200, 90)]
    assert counts == Counter({"added signboard": 1, "dropped signboard": 1})


def test_a_teacher_box_on_a_completed_object_is_not_labelled_twice() -> None:
    rows = [
        CompletionBox("truck", (0.0, 0.0, 100.0, 100.0), "added"),
        CompletionBox("truck", (300.0, 0.0, 340.0, 20.0), "ignore"),
    ]
    teacher = [
        LabeledBox("truck", 5, 0, 100, 95),  # the added truck again
        LabeledBox("car", 0, 0, 100, 100),  # another class: the teacher's own call stays
        LabeledBox("truck", 300, 0, 338, 20),  # the far truck the team left as ignore
        LabeledBox("truck", 500, 0, 600, 90),  # a truck no one completed
    ]
    assert [(b.class_name, b.x1) for b in without_duplicates(teacher, rows)] == [("car", 0), ("truck", 500)]


def _source(root: Path, name: str, label: str) -> None:
    for split in ("train", "val"):
        (root / name / split / "images").mkdir(parents=True)
        (root / name / split / "labels").mkdir(parents=True)
        cv2.imwrite(str(root / name / split / "images" / "a.jpg"), np.full((100, 200, 3), 90, np.uint8))
        (root / name / split / "labels" / "a.txt").write_text(label)


def test_the_recipe_trains_on_completed_labels_and_refuses_a_bad_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _source(data, "garbage", "0 0.5 0.5 0.2 0.2\n")
    _source(data, "signboards", "0 0.2 0.2 0.2 0.2\n")
    _source(data, "vehicles", "2 0.5 0.5 0.4 0.4\n")
    csv_file = tmp_path / "train.csv"
    csv_file.write_text(
        "photo,class,x1,y1,x2,y2,kind\n"
        "signboards/a.jpg,signboard,120,10,180,50,added\n"
        "vehicles/a.jpg,truck,0,0,40,40,added\n"
    )
    assert (
        main(
            [
                "--data",
                str(data),
                "--out",
                str(tmp_path / "out"),
                "--no-pseudo",
                "--complete",
                "train",
                str(csv_file),
            ]
        )
        == 0
    )
    train = (tmp_path / "out" / "train" / "labels" / "signboards__a.txt").read_text().split("\n")
    val = (tmp_path / "out" / "val" / "labels" / "signboards__a.txt").read_text().split("\n")
    assert len([x for x in train if x]) == 2 and len([x for x in val if x]) == 1  # val untouched
    assert "3 0.750000 0.300000 0.300000 0.400000" in train  # the added sign, normalised
    assert (
        len(
            [
                x
                for x in (tmp_path / "out" / "train" / "labels" / "vehicles__a.txt").read_text().split("\n")
                if x
            ]
        )
        == 2
    )

    typo = tmp_path / "typo.csv"
    typo.write_text("photo,class,x1,y1,x2,y2,kind\nsignboards/b.jpg,signboard,10,10,50,50,added\n")
    assert (
        main(
            [
                "--data",
                str(data),
                "--out",
                str(tmp_path / "out4"),
                "--no-pseudo",
                "--complete",
                "train",
                str(typo),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "out4" / "prepare_report.json").read_text())
    assert (
        "completion (train): signboards/b.jpg is no train photo of the sources; ignored" in report["problems"]
    )

    bad = tmp_path / "bad.csv"
    bad.write_text("photo,class,x1,y1,x2,y2,kind\nsignboards/a.jpg,signboard,10,10,5,5,added\n")
    assert (
        main(
            [
                "--data",
                str(data),
                "--out",
                str(tmp_path / "out2"),
                "--no-pseudo",
                "--complete",
                "train",
                str(bad),
            ]
        )
        == 1
    )
    assert (
        main(
            [
                "--data",
                str(data),
                "--out",
                str(tmp_path / "out3"),
                "--no-pseudo",
                "--complete",
                "test",
                str(csv_file),
            ]
        )
        == 1
    )

"""training.label_completion.resolve: the third look at two passes' disagreements."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.label_completion.passes import Row, final
from training.label_completion.resolve import main, parse

INDEX: dict[str, dict[str, object]] = {
    "D000": {
        "photo": "signboards/a.jpg",
        "class": "signboard",
        "pass1": [10, 10, 60, 40, "added"],
        "pass2": None,
    },
    "D001": {
        "photo": "signboards/a.jpg",
        "class": "signboard",
        "pass1": None,
        "pass2": [100, 10, 150, 40, "ignore"],
    },
    "D002": {
        "photo": "signboards/a.jpg",
        "class": "signboard",
        "pass1": [0, 60, 40, 90, "added"],
        "pass2": None,
    },
}


def test_each_decision_becomes_a_resolution_the_final_step_reads() -> None:
    rows = parse(
        INDEX,
        ["D000: 1 | pass 2 missed it", "D001: add 98 8 152 42 | a readable board", "D002: none | a poster"],
    )
    assert [(r["final_box"], r["final_kind"]) for r in rows] == [
        ("10 10 60 40", "added"),
        ("98 8 152 42", "added"),
        ("", ""),
    ]
    done = final([Row("signboards/a.jpg", "signboard", (10.0, 10.0, 60.0, 40.0), "added")], [], rows)
    assert [(r.box, r.kind) for r in done] == [
        ((10.0, 10.0, 60.0, 40.0), "added"),
        ((98.0, 8.0, 152.0, 42.0), "added"),
    ]


def test_a_pile_pair_resolved_as_a_source_labels_removal_names_that_labels_class() -> None:
    # Pass 1 boxed the bin as an added overflowing bin, pass 2 said the source's garbage label there
    # is no garbage: the row the third look keeps must name the class its kind drops.
    index: dict[str, dict[str, object]] = {
        "D000": {
            "photo": "garbage/a.jpg",
            "class": "overflow",
            "pass1": [10, 10, 60, 90, "added"],
            "pass2": [12, 10, 60, 90, "not_a_garbage"],
        }
    }
    (row,) = parse(index, ["D000: 2 | a bicycle, not garbage"])
    assert (row["class"], row["final_kind"]) == ("garbage", "not_a_garbage")
    (kept,) = parse(index, ["D000: 1 | the bin's bags rise above its rim"])
    assert (kept["class"], kept["final_kind"]) == ("overflow", "added")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["D000: 1 | a", "D001: 2 | b"], "not answered: D002"),
        (["D000: 1"], "needs its reason"),
        (["D000: 2 | x"], "pass 2 drew no box"),
        (["D000: keep | x"], "none of 1, 2"),
        (["D000: add 5 5 1 1 | x"], "empty or inverted"),
    ],
)
def test_bad_decisions_are_refused(lines: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(INDEX, lines)


def test_sheets_then_answers_write_the_resolution_file(tmp_path: Path) -> None:
    images = tmp_path / "data" / "signboards" / "train" / "images"
    images.mkdir(parents=True)
    cv2.imwrite(str(images / "a.jpg"), np.full((200, 300, 3), 90, np.uint8))
    (tmp_path / "agreement.json").write_text(json.dumps({"disagreements": list(INDEX.values())}))
    (tmp_path / "proposals.json").write_text(
        json.dumps({"signboards/a.jpg": {"labels": [["signboard", 0, 0, 9, 9]]}})
    )
    out = tmp_path / "third"
    args = ["sheets", str(tmp_path / "agreement.json"), str(tmp_path / "proposals.json"), str(out)]
    assert main([*args, "--split", "train", "--data", str(tmp_path / "data")]) == 0
    assert sorted(p.name for p in out.glob("D*.png")) == ["D000.png", "D001.png", "D002.png"]
    (tmp_path / "answers.txt").write_text("D000: 1 | seen\nD001: 2 | small\nD002: none | poster\n")
    assert (
        main(["answers", str(out / "index.json"), str(tmp_path / "answers.txt"), str(tmp_path / "r.csv")])
        == 0
    )
    with (tmp_path / "r.csv").open() as f:
        assert [row["final_kind"] for row in csv.DictReader(f)] == ["added", "ignore", ""]
    (tmp_path / "bad.txt").write_text("D000: 1 | seen\n")
    assert (
        main(["answers", str(out / "index.json"), str(tmp_path / "bad.txt"), str(tmp_path / "r2.csv")]) == 2
    )

"""training.label_completion.sheets: which tasks a pass draws, from which split and which photos."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from training.label_completion.sheets import main, tasks

Entry = dict[str, list[list[object]]]
DATA: dict[str, Entry] = {
    # A signboard photo: always a signboard task; a truck task only with a truck proposal.
    "signboards/s1.jpg": {"labels": [], "reports": [], "props": [[1, "truck", 0.4, 10, 10, 60, 60]]},
    "signboards/s2.jpg": {"labels": [["signboard", 5, 5, 50, 30]], "reports": [], "props": []},
    # A vehicle photo: always a truck task.
    "vehicles/v1.jpg": {"labels": [], "reports": [], "props": []},
    # A garbage photo: always a pile task (garbage and overflow together); a sign task on a proposal.
    "garbage/g1.jpg": {
        "labels": [["garbage_bin", 10, 10, 40, 60], ["overflow", 50, 10, 90, 70]],
        "reports": [["garbage_overflow", 100, 60, 150, 110]],
        "props": [[0, "overflow", 0.3, 0, 70, 40, 110], [0, "signboard", 0.2, 5, 5, 60, 20]],
    },
}


def test_tasks_keep_only_the_classes_asked_for() -> None:
    both = tasks(DATA)
    assert ("signboards/s1.jpg", "truck") in both
    assert ("vehicles/v1.jpg", "truck") in both
    assert ("garbage/g1.jpg", "garbage") not in both
    assert tasks(DATA, ("signboard",)) == [
        ("garbage/g1.jpg", "signboard"),
        ("signboards/s1.jpg", "signboard"),
        ("signboards/s2.jpg", "signboard"),
    ]
    assert tasks(DATA, ("garbage",)) == [("garbage/g1.jpg", "garbage")]


def test_a_pile_task_proposes_the_box_reports_and_both_pile_classes_and_indexes_the_source_labels(
    tmp_path: Path,
) -> None:
    _photos(tmp_path / "data", "val")
    proposals = tmp_path / "proposals.json"
    proposals.write_text(json.dumps(DATA))
    out = tmp_path / "piles"
    assert main([str(proposals), str(out), "--data", str(tmp_path / "data"), "--class", "garbage"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert list(index) == ["G0A"]
    name, cls, _, props, labels = index["G0A"]
    assert (name, cls) == ("garbage/g1.jpg", "garbage")
    # the box's report first (surest), then the detector's overflow box; never the sign proposal
    assert [p[4] for p in props] == ["R", "D"]
    assert labels == [["garbage_bin", 10, 10, 40, 60], ["overflow", 50, 10, 90, 70]]


def _photos(root: Path, split: str) -> None:
    for name in DATA:
        photo_set, file = name.split("/")
        folder = root / photo_set / split / "images"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / file), np.full((120, 160, 3), 90, np.uint8))


def test_a_part_of_the_train_split_is_drawn_from_the_train_photos(tmp_path: Path) -> None:
    _photos(tmp_path / "data", "train")  # no val folder at all: drawing from val would fail
    proposals = tmp_path / "proposals.json"
    proposals.write_text(json.dumps(DATA))
    part = tmp_path / "part.txt"
    part.write_text("signboards/s1.jpg\nvehicles/v1.jpg\n")
    out = tmp_path / "pass1"
    code = main(
        [
            str(proposals),
            str(out),
            "--data",
            str(tmp_path / "data"),
            "--split",
            "train",
            "--photos",
            str(part),
            "--class",
            "truck",
        ]
    )
    assert code == 0
    index = json.loads((out / "index.json").read_text())
    assert sorted((cell[0], cell[1]) for cell in index.values()) == [
        ("signboards/s1.jpg", "truck"),
        ("vehicles/v1.jpg", "truck"),
    ]
    assert (out / "S00.png").is_file() and (out / "V00.png").is_file()


def test_every_photo_can_be_a_task_less_those_an_earlier_pass_drew(tmp_path: Path) -> None:
    # The garbage photo has a sign proposal but none for trucks: normally a sign task only.
    assert ("garbage/g1.jpg", "truck") not in tasks(DATA)
    every = tasks(DATA, ("signboard", "truck"), every=True)
    assert ("garbage/g1.jpg", "truck") in every and ("vehicles/v1.jpg", "signboard") in every
    done = frozenset({("garbage/g1.jpg", "signboard"), ("signboards/s1.jpg", "signboard")})
    rest = tasks(DATA, ("signboard", "truck"), every=True, done=done)
    assert set(rest) == set(every) - done
    # From the command line: an earlier pass's index names what is done.
    _photos(tmp_path / "data", "val")
    proposals = tmp_path / "proposals.json"
    proposals.write_text(json.dumps(DATA))
    first = tmp_path / "first"
    assert main([str(proposals), str(first), "--data", str(tmp_path / "data"), "--class", "signboard"]) == 0
    rest_dir = tmp_path / "rest"
    argv = [str(proposals), str(rest_dir), "--data", str(tmp_path / "data"), "--every"]
    assert main([*argv, "--skip", str(first / "index.json"), "--class", "signboard"]) == 0
    drawn = {(cell[0], cell[1]) for cell in json.loads((rest_dir / "index.json").read_text()).values()}
    # The first pass drew both signboard photos and the garbage photo's proposed sign: only the
    # vehicle photo, which has no sign proposal, is left.
    assert drawn == {("vehicles/v1.jpg", "signboard")}

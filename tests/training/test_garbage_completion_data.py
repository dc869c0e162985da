"""The committed completions of the garbage photos (piles; the signs and trucks no detector proposed)
are what their answers, passes and third looks give."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.label_completion import COMPLETION, PILES, REST, read_completion
from training.label_completion.passes import Row, final, parse_answers, read_rows
from training.label_completion.resolve import parse

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
FOLDERS = [PILES.parent, REST.parent]


def _pass(folder: Path, n: int) -> list[Row]:
    index = json.loads((folder / f"sheets_pass{n}.json").read_text())
    rows = parse_answers(index, (folder / f"answers_pass{n}.txt").read_text().splitlines())
    stored = read_rows(folder / f"pass{n}.csv")
    assert [r.csv() for r in rows] == [r.csv() for r in stored]  # the CSV keeps 0.1 px
    return stored


def _tasks(folder: Path, n: int) -> list[tuple[str, str]]:
    return [
        (str(c[0]), str(c[1])) for c in json.loads((folder / f"sheets_pass{n}.json").read_text()).values()
    ]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_the_completion_is_rebuilt_from_the_answers_and_the_third_look(folder: Path) -> None:
    first, second = _pass(folder, 1), _pass(folder, 2)
    third = json.loads((folder / "third_sheets.json").read_text())
    resolutions = parse(third, (folder / "third_answers.txt").read_text().splitlines())
    with (folder / "resolution.csv").open(newline="") as f:
        assert list(csv.DictReader(f)) == resolutions
    rebuilt = final(first, second, resolutions)
    assert [r.csv() for r in rebuilt] == [r.csv() for r in read_rows(folder / "completion.csv")]


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_both_passes_drew_the_same_tasks_in_another_order(folder: Path) -> None:
    one, two = _tasks(folder, 1), _tasks(folder, 2)
    assert len(one) == len(set(one)) and set(one) == set(two) and one != two


def test_the_piles_cover_every_garbage_photo_once() -> None:
    tasks = _tasks(PILES.parent, 1)
    assert len({photo for photo, _ in tasks}) == len(tasks) == 300 and {c for _, c in tasks} == {"garbage"}


def test_the_rest_is_every_garbage_sign_and_truck_task_the_first_completion_left_out() -> None:
    earlier = set(_tasks(COMPLETION.parent, 1))
    rest = set(_tasks(REST.parent, 1))
    garbage = {photo for photo, _ in _tasks(PILES.parent, 1)}
    assert not rest & earlier
    everything = {(photo, cls) for photo in garbage for cls in ("signboard", "truck")}
    assert rest | {t for t in earlier if t[0].startswith("garbage/")} == everything


def test_the_completions_read_and_hold_only_their_classes() -> None:
    piles, rest = read_completion(PILES), read_completion(REST)
    assert all(name.startswith("garbage/") for name in [*piles, *rest])
    assert {b.kind for boxes in piles.values() for b in boxes} <= {
        "added",
        "ignore",
        "not_a_garbage",
        "not_a_overflow",
    }
    assert {b.class_name for boxes in rest.values() for b in boxes} <= {"signboard", "truck"}
    assert any(b.kind == "added" for boxes in rest.values() for b in boxes)


@pytest.mark.skipif(not (SHARED / "garbage" / "val").is_dir(), reason=f"needs the garbage photos in {SHARED}")
def test_every_completed_photo_is_a_garbage_validation_photo() -> None:
    names = [*read_completion(PILES), *read_completion(REST)]
    missing = [n for n in names if not (SHARED / "garbage" / "val" / "images" / n.split("/", 1)[1]).is_file()]
    assert missing == []

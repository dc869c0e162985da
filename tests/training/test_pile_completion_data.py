"""The committed pile completion (garbage photos) is what its answers, passes and third look give."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.label_completion import PILES, read_completion
from training.label_completion.passes import Row, final, parse_answers, read_rows
from training.label_completion.resolve import parse

FOLDER = PILES.parent
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _pass(n: int) -> list[Row]:
    index = json.loads((FOLDER / f"sheets_pass{n}.json").read_text())
    rows = parse_answers(index, (FOLDER / f"answers_pass{n}.txt").read_text().splitlines())
    stored = read_rows(FOLDER / f"pass{n}.csv")
    assert [r.csv() for r in rows] == [r.csv() for r in stored]  # the CSV keeps 0.1 px
    return stored


def test_both_passes_cover_every_garbage_photo_once() -> None:
    for n in (1, 2):
        index = json.loads((FOLDER / f"sheets_pass{n}.json").read_text())
        photos = [cell[0] for cell in index.values()]
        assert len(photos) == len(set(photos)) == 300
        assert {cell[1] for cell in index.values()} == {"garbage"}
    first = json.loads((FOLDER / "sheets_pass1.json").read_text())
    second = json.loads((FOLDER / "sheets_pass2.json").read_text())
    assert {c[0] for c in first.values()} == {c[0] for c in second.values()}
    # pass 2 saw the photos in another order
    assert [c[0] for c in first.values()] != [c[0] for c in second.values()]


def test_the_completion_is_rebuilt_from_the_answers_and_the_third_look() -> None:
    first, second = _pass(1), _pass(2)
    third = json.loads((FOLDER / "third_sheets.json").read_text())
    resolutions = parse(third, (FOLDER / "third_answers.txt").read_text().splitlines())
    with (FOLDER / "resolution.csv").open(newline="") as f:
        assert list(csv.DictReader(f)) == resolutions
    rebuilt = final(first, second, resolutions)
    assert [r.csv() for r in rebuilt] == [r.csv() for r in read_rows(PILES)]


def test_the_completion_reads_and_holds_only_pile_classes() -> None:
    by_photo = read_completion(PILES)
    assert all(name.startswith("garbage/") for name in by_photo)
    kinds = {box.kind for boxes in by_photo.values() for box in boxes}
    assert kinds <= {"added", "ignore", "not_a_garbage", "not_a_overflow"}
    assert "added" in kinds


@pytest.mark.skipif(not (SHARED / "garbage" / "val").is_dir(), reason=f"needs the garbage photos in {SHARED}")
def test_every_completed_photo_is_a_garbage_validation_photo() -> None:
    missing = [
        name
        for name in read_completion(PILES)
        if not (SHARED / "garbage" / "val" / "images" / name.split("/", 1)[1]).is_file()
    ]
    assert missing == []

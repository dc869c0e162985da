"""The committed train-split completion is what its answers, passes and third looks give."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench.label_completion import read_completion
from training.label_completion.passes import final, parse_answers, read_rows

TRAIN = Path(__file__).resolve().parents[2] / "datasets" / "label_completion" / "train"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
PARTS = sorted(p.name for p in TRAIN.iterdir() if (p / "completion.csv").is_file())


def test_every_part_is_there() -> None:
    assert PARTS == ["s1", "s2", "s3", "v1", "v2", "v3"]


@pytest.mark.parametrize("part", PARTS)
def test_a_part_is_rebuilt_from_its_answers_and_resolutions(part: str) -> None:
    folder = TRAIN / part
    passes = []
    for n in (1, 2):
        index = json.loads((folder / f"sheets_pass{n}.json").read_text())
        rows = parse_answers(index, (folder / f"answers_pass{n}.txt").read_text().splitlines())
        stored = read_rows(folder / f"pass{n}.csv")
        assert [r.csv() for r in rows] == [r.csv() for r in stored]  # the CSV keeps 0.1 px
        passes.append(stored)
    with (folder / "resolution.csv").open(newline="") as f:
        resolutions = list(csv.DictReader(f))
    rebuilt = final(passes[0], passes[1], resolutions)
    assert [r.csv() for r in rebuilt] == [r.csv() for r in read_rows(folder / "completion.csv")]


def test_the_joined_file_is_the_parts_together_and_reads() -> None:
    parts = sorted(row.csv() for part in PARTS for row in read_rows(TRAIN / part / "completion.csv"))
    joined = sorted(row.csv() for row in read_rows(TRAIN / "completion.csv"))
    assert [[str(v) for v in r] for r in parts] == [[str(v) for v in r] for r in joined]
    by_photo = read_completion(TRAIN / "completion.csv")
    kinds = {box.kind for boxes in by_photo.values() for box in boxes}
    assert kinds == {"added", "ignore", "not_a_truck"}


@pytest.mark.skipif(not (SHARED / "signboards" / "train").is_dir(), reason=f"needs {SHARED}")
def test_every_completed_photo_is_a_train_photo() -> None:
    photos = read_completion(TRAIN / "completion.csv")
    missing = [
        name
        for name in photos
        if not (SHARED / name.split("/")[0] / "train" / "images" / name.split("/", 1)[1]).is_file()
    ]
    assert missing == []

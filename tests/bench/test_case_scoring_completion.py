"""Scoring against the sources' labels plus the team's completion: ignore boxes and the merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.case_precision import SETS, SHARED, main
from bench.case_scoring import Label, PhotoResult, Report, score
from bench.label_completion import (
    COMPLETION,
    PILES,
    REST,
    CompletionBox,
    CompletionError,
    complete,
    read_completion,
    read_completions,
)
from streetwatch.events import ViolationType as VT

SIGN = (0.0, 0.0, 100.0, 50.0)
FAR_SIGN = (200.0, 0.0, 300.0, 50.0)
SMALL = (400.0, 0.0, 420.0, 20.0)
TRUCK = (0.0, 100.0, 200.0, 200.0)

FIXTURE = """photo,class,x1,y1,x2,y2,kind
signboards/shop.jpg,signboard,200,0,300,50,added
signboards/shop.jpg,signboard,400,0,420,20,ignore
signboards/shop.jpg,signboard,0,300,100,350,added
vehicles/road.jpg,truck,0,100,200,200,not_a_truck
"""


def test_a_report_on_an_ignore_box_is_neither_right_nor_wrong_and_the_box_is_not_in_recall() -> None:
    labels = [Label("signboard", SIGN), Label("signboard", SMALL, ignore=True)]
    reports = [
        Report(VT.illegal_signboard, SIGN),  # right
        Report(VT.illegal_signboard, (401.0, 0.0, 421.0, 20.0)),  # on the ignore box: left out
        Report(VT.illegal_signboard, (415.0, 0.0, 480.0, 50.0)),  # near it but IoU 0.07: wrong
    ]
    s = score([PhotoResult("shop.jpg", labels, reports)])[VT.illegal_signboard]
    assert (s.reports, s.right, s.ignored, s.labelled, s.found) == (2, 1, 1, 1, 1)
    assert s.precision == 0.5 and s.recall == 1.0
    assert s.as_dict()["ignored"] == 1


def test_a_report_on_a_label_and_an_ignore_box_counts_right() -> None:
    labels = [Label("signboard", SIGN), Label("signboard", (0.0, 0.0, 90.0, 50.0), ignore=True)]
    s = score([PhotoResult("shop.jpg", labels, [Report(VT.illegal_signboard, SIGN)])])[VT.illegal_signboard]
    assert (s.reports, s.right, s.ignored, s.labelled) == (1, 1, 0, 1)


def test_an_ignore_box_answers_only_by_its_types_rule() -> None:
    # A truck ignore box needs IoU >= 0.5, as a truck label does: a report on 45 % of it stays wrong.
    labels = [Label("truck", TRUCK, ignore=True)]
    reports = [Report(VT.unsealed_truck, (0.0, 100.0, 90.0, 200.0)), Report(VT.illegal_signboard, TRUCK)]
    scores = score([PhotoResult("road.jpg", labels, reports)])
    assert (scores[VT.unsealed_truck].reports, scores[VT.unsealed_truck].ignored) == (1, 0)
    assert (scores[VT.illegal_signboard].reports, scores[VT.illegal_signboard].ignored) == (1, 0)


def test_the_completion_merges_onto_the_source_labels(tmp_path: Path) -> None:
    path = tmp_path / "completion.csv"
    path.write_text(FIXTURE)
    boxes = read_completion(path)
    assert sorted(boxes) == ["signboards/shop.jpg", "vehicles/road.jpg"]
    assert boxes["signboards/shop.jpg"][1] == CompletionBox("signboard", SMALL, "ignore")

    source = [Label("signboard", SIGN)]
    shop = complete(source, boxes["signboards/shop.jpg"])
    assert shop == (
        Label("signboard", SIGN),
        Label("signboard", FAR_SIGN),
        Label("signboard", SMALL, ignore=True),
        Label("signboard", (0.0, 300.0, 100.0, 350.0)),
    )
    # not_a_truck drops the source truck it names; a car label beside it stays.
    road = complete(
        [Label("truck", (2.0, 100.0, 200.0, 198.0)), Label("car", TRUCK)], boxes["vehicles/road.jpg"]
    )
    assert road == (Label("car", TRUCK),)

    # Reports on the sign the source left out become right; the third sign, added but never
    # reported, now counts as a miss: completing the labels can lower recall.
    reports = [Report(VT.illegal_signboard, SIGN), Report(VT.illegal_signboard, FAR_SIGN)]
    before = score([PhotoResult("signboards/shop.jpg", source, reports)])[VT.illegal_signboard]
    after = score([PhotoResult("signboards/shop.jpg", shop, reports)])[VT.illegal_signboard]
    assert (before.right, before.reports, before.found, before.labelled) == (1, 2, 1, 1)
    assert (after.right, after.reports, after.found, after.labelled) == (2, 2, 2, 3)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("signboards/a.jpg,signboard,10,10,5,20,added", "empty or inverted"),
        ("signboards/a.jpg,signboard,10,10,x,20,added", "not four numbers"),
        ("signboards/a.jpg,signboard,0,0,10,10,maybe", "kind 'maybe'"),
        ("signboards/a.jpg,signboard,0,0,10,10,not_a_truck", "kind 'not_a_truck'"),
        ("a.jpg,signboard,0,0,10,10,added", "<set>/<file>"),
    ],
)
def test_a_bad_completion_row_is_refused_with_its_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "completion.csv"
    path.write_text("photo,class,x1,y1,x2,y2,kind\nsignboards/a.jpg,signboard,0,0,10,10,added\n" + row + "\n")
    with pytest.raises(CompletionError, match=message) as err:
        read_completion(path)
    assert f"{path}:3" in str(err.value)


def test_a_completion_without_its_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "completion.csv"
    path.write_text("photo,box\nsignboards/a.jpg,1 2 3 4\n")
    with pytest.raises(CompletionError, match="missing column"):
        read_completion(path)


@pytest.mark.parametrize(
    ("path", "classes"),
    [(COMPLETION, ("signboard", "truck")), (PILES, ("garbage", "overflow")), (REST, ("signboard", "truck"))],
)
def test_the_teams_completions_name_their_photos_with_sane_boxes(path: Path, classes: tuple[str]) -> None:
    boxes = read_completion(path)
    assert sum(len(b) for b in boxes.values()) > 20
    for photo, rows in boxes.items():
        assert photo.split("/")[0] in SETS, photo
        for row in rows:
            assert row.class_name in classes and 0 <= row.box[0] < row.box[2], (photo, row)


def test_completions_of_other_classes_merge_per_photo(tmp_path: Path) -> None:
    signs, piles = tmp_path / "signs.csv", tmp_path / "piles.csv"
    signs.write_text(FIXTURE)
    piles.write_text(
        "photo,class,x1,y1,x2,y2,kind\n"
        "signboards/shop.jpg,garbage,0,400,80,460,added\n"
        "garbage/bins.jpg,overflow,10,10,60,90,not_a_overflow\n"
    )
    merged = read_completions([signs, piles])
    assert sorted(merged) == ["garbage/bins.jpg", "signboards/shop.jpg", "vehicles/road.jpg"]
    assert [b.class_name for b in merged["signboards/shop.jpg"]] == ["signboard"] * 3 + ["garbage"]
    labels = complete([Label("overflow", (12.0, 10.0, 60.0, 90.0))], merged["garbage/bins.jpg"])
    assert labels == ()  # the source's overflow label on that bin is dropped
    with pytest.raises(CompletionError, match="no completion labels at"):
        read_completions([signs, tmp_path / "none.csv"])


needs_shared = pytest.mark.skipif(
    not (SHARED / "signboards" / "val").is_dir(), reason=f"needs the labelled photos in {SHARED}"
)


@needs_shared
def test_the_bench_scores_both_label_sets_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sorted((SHARED / "signboards" / "val" / "images").iterdir())[0].name
    path = tmp_path / "completion.csv"
    path.write_text(
        "photo,class,x1,y1,x2,y2,kind\n"
        f"signboards/{first},signboard,0,0,40,40,added\n"
        f"signboards/{first},signboard,50,0,90,40,added\n"
        f"signboards/{first},signboard,100,0,110,10,ignore\n"
    )
    assert main(["--sets", "signboards", "--limit", "2", "--json", "--completion", str(path)]) == 0
    result = json.loads(capsys.readouterr().out)
    source, done = result["types"]["illegal_signboard"], result["completed"]["types"]["illegal_signboard"]
    assert done["labelled"] == source["labelled"] + 2  # the ignore box is not counted
    assert done["reports"] + done["ignored"] == source["reports"]
    assert "completed" in result and result["completed"]["by_set"].keys() == {"signboards"}


def test_a_missing_completion_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if not (SHARED / "signboards" / "val").is_dir():
        pytest.skip(f"needs the labelled photos in {SHARED}")
    argv = [
        "--sets",
        "signboards",
        "--limit",
        "1",
        "--labels",
        "completed",
        "--completion",
        str(tmp_path / "x.csv"),
    ]
    assert main(argv) == 2
    assert "no completion labels at" in capsys.readouterr().err


def test_side_by_side_leaves_a_missing_completion_out_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if not (SHARED / "signboards" / "val").is_dir():
        pytest.skip(f"needs the labelled photos in {SHARED}")
    first = sorted((SHARED / "signboards" / "val" / "images").iterdir())[0].name
    present = tmp_path / "present.csv"
    present.write_text(f"photo,class,x1,y1,x2,y2,kind\nsignboards/{first},signboard,0,0,40,40,added\n")
    argv = ["--sets", "signboards", "--limit", "1", "--json", "--completion", str(present)]
    assert main([*argv, "--completion", str(tmp_path / "gone.csv")]) == 0
    out = capsys.readouterr()
    assert f"no completion at {tmp_path / 'gone.csv'}; left out" in out.err
    result = json.loads(out.out)
    source, done = result["types"]["illegal_signboard"], result["completed"]["types"]["illegal_signboard"]
    assert done["labelled"] == source["labelled"] + 1  # the file that is there still counts

"""bench.thresholds: the sweep and the held-out choice on hand-made photos, and a short real run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.case_precision import DEFAULT_CONFIG, SHARED
from bench.case_scoring import Label, PhotoResult, Report
from bench.thresholds import at_threshold, best, choose, grid, lowered, main, sweep
from edge.config import load_config
from streetwatch.events import ViolationType as VT

SIGN = (0.0, 0.0, 100.0, 100.0)
ELSEWHERE = (500.0, 500.0, 600.0, 600.0)


def sign_photo(name: str, right: float | None, wrong: float | None) -> PhotoResult:
    """One labelled sign; a report on it scoring ``right``, and one on nothing scoring ``wrong``."""
    reports = []
    if right is not None:
        reports.append(Report(VT.illegal_signboard, SIGN, right, "signboard"))
    if wrong is not None:
        reports.append(Report(VT.illegal_signboard, ELSEWHERE, wrong, "signboard"))
    return PhotoResult(name, [Label("signboard", SIGN)], reports)


def test_a_report_counts_from_its_own_score_up_and_a_class_asking_more_keeps_asking_more() -> None:
    photo = PhotoResult(
        "p.jpg",
        [Label("garbage", SIGN), Label("overflow", ELSEWHERE)],
        [
            Report(VT.garbage_overflow, SIGN, 0.40, "garbage"),
            Report(VT.garbage_overflow, ELSEWHERE, 0.50, "overflow"),
        ],
    )
    extra = {"overflow": 0.15}  # the class map asks overflow 0.15 more than the rule
    assert at_threshold([photo], VT.garbage_overflow, 0.30, extra).found == 2
    assert at_threshold([photo], VT.garbage_overflow, 0.40, extra).found == 1  # overflow needs 0.55 now
    assert at_threshold([photo], VT.garbage_overflow, 0.45, extra).found == 0


def test_a_report_without_a_score_is_refused() -> None:
    photo = PhotoResult("p.jpg", [], [Report(VT.illegal_signboard, SIGN)])
    with pytest.raises(ValueError, match="without a score"):
        at_threshold([photo], VT.illegal_signboard, 0.3, {})


def test_the_choice_is_the_highest_recall_that_keeps_the_target_precision() -> None:
    # Wrong reports score 0.45 and below, right ones 0.3 to 0.9: 0.475 is the first threshold at
    # precision 1, and recall only falls above it.
    photos = [sign_photo(f"{i}.jpg", 0.3 + 0.06 * i, 0.45 if i < 3 else None) for i in range(10)]
    points = sweep(photos, VT.illegal_signboard, grid(0.2), {})
    assert best(points, 1.0) == pytest.approx(0.475)
    assert best(points, 0.5) == pytest.approx(0.2)  # 10 right of 13 reports meets 0.5 already
    assert best(points, 1.01) is None


def test_a_threshold_fitted_to_one_half_is_scored_on_the_other() -> None:
    # Half 0's wrong reports score 0.5, half 1's 0.7: the threshold chosen on half 1 (0.725)
    # misses every right report of half 0 below it, and the one chosen on half 0 (0.525)
    # lets half 1's wrong reports through. Held out, precision falls below the target.
    half0 = [sign_photo(f"a{i}.jpg", 0.6, 0.5) for i in range(4)]
    half1 = [sign_photo(f"b{i}.jpg", 0.8, 0.7) for i in range(4)]
    choice = choose([*half0, *half1], VT.illegal_signboard, 1.0, grid(0.2), {}, half=lambda n: n[0] == "b")
    assert choice.half_thresholds == (pytest.approx(0.725), pytest.approx(0.525))
    assert choice.threshold == pytest.approx(0.725)  # on all photos: only above both wrong scores
    held = choice.held_out
    # Half 0 scored at 0.725: nothing reported. Half 1 scored at 0.525: 4 right, 4 wrong.
    assert (held.reports, held.right, held.found, held.labelled) == (8, 4, 4, 8)


def test_lowering_the_demo_config_keeps_what_each_class_asks_over_its_rule() -> None:
    config = load_config(DEFAULT_CONFIG)
    low, extra = lowered(config, 0.2)
    assert all(rule.min_score <= 0.2 for rule in low.rules.values())
    assert low.fusion is not None and low.fusion.conf <= 0.2
    for before, after in zip(config.class_map, low.class_map, strict=True):
        if before.min_score is None:
            assert after.min_score is None
        else:
            rule = config.rules[before.violation_type].min_score
            assert extra[before.detector_class] == pytest.approx(before.min_score - rule)
            assert after.min_score == pytest.approx(0.2 + before.min_score - rule)
    assert extra  # the demo asks overflow more than garbage


def test_without_the_shared_photos_it_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "none")]) == 0
    assert "nothing to measure" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["--target", "signs=0.9"], ["--target", "illegal_signboard=1.5"], ["--target", "illegal_signboard=x"]],
)
def test_a_malformed_target_is_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert "expected TYPE=PRECISION" in capsys.readouterr().err


def test_no_frames_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--frames", "0"])
    assert "--frames must be at least 1" in capsys.readouterr().err


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the labelled photos in ../shared/data")
def test_a_short_real_run_sweeps_every_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--sets", "vehicles,garbage", "--limit", "3", "--json", "--floor", "0.1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == 6
    trucks = result["types"]["unsealed_truck"]["sweep"]
    reports = [p["reports"] for p in trucks]
    assert reports == sorted(reports, reverse=True) and reports[0] > 0  # fewer as the threshold rises
    # The sweep starts where tracks can start (the demo's tracker: 0.2), above the floor asked (0.1).
    start = load_config(DEFAULT_CONFIG).tracker.new_track_thresh
    assert start > 0.1
    assert trucks[0]["threshold"] == pytest.approx(start) and trucks[-1]["threshold"] == pytest.approx(0.9)
    # Beside each choice, what the config asks now.
    rules = load_config(DEFAULT_CONFIG).rules
    for vtype, part in result["types"].items():
        assert part["config_asks"] == rules[VT(vtype)].min_score


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the labelled photos in ../shared/data")
def test_the_completion_scored_against_is_the_one_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = sorted((SHARED / "garbage" / "val" / "images").iterdir())[0].name
    header = "photo,class,x1,y1,x2,y2,kind\n"
    none, one = tmp_path / "none.csv", tmp_path / "one.csv"
    none.write_text(header)
    one.write_text(f"{header}garbage/{first},garbage,0,0,40,40,added\n")
    labelled = []
    for path in (none, one):
        assert main(["--sets", "garbage", "--limit", "2", "--json", "--completion", str(path)]) == 0
        held_out = json.loads(capsys.readouterr().out)["types"]["garbage_overflow"]["held_out"]
        labelled.append(held_out["labelled"])
    assert labelled[1] == labelled[0] + 1
    assert main(["--sets", "garbage", "--limit", "1", "--completion", str(tmp_path / "gone.csv")]) == 2
    assert "no completion labels at" in capsys.readouterr().err

"""bench.case_precision: the scoring rules on hand-made photos, and a short run on real photos."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.case_precision import DEFAULT_CONFIG, SHARED, main
from bench.case_scoring import Label, PhotoResult, Report, score, table
from streetwatch.events import ViolationType as VT

PILE = (100.0, 100.0, 300.0, 300.0)
TRUCK = (0.0, 0.0, 200.0, 100.0)


def photo(labels: list[Label], reports: list[Report], name: str = "p.jpg") -> PhotoResult:
    return PhotoResult(name, labels, reports)


def test_garbage_is_right_by_iou_or_by_half_of_the_report_inside_a_label() -> None:
    labels = [Label("garbage", PILE), Label("overflow", (400.0, 0.0, 500.0, 100.0))]
    reports = [
        Report(VT.garbage_overflow, (150.0, 150.0, 200.0, 200.0)),  # small part of the pile: inside, IoU 0.06
        Report(VT.garbage_overflow, (390.0, 0.0, 500.0, 110.0)),  # the overflowing bin, IoU 0.83
        Report(VT.garbage_overflow, (250.0, 250.0, 450.0, 450.0)),  # a quarter inside, IoU 0.08: wrong
    ]
    s = score([photo(labels, reports)])[VT.garbage_overflow]
    assert (s.reports, s.right, s.labelled, s.found) == (3, 2, 2, 2)
    assert s.precision == pytest.approx(2 / 3)
    assert s.recall == 1.0


def test_a_garbage_bin_label_is_no_garbage() -> None:
    s = score([photo([Label("garbage_bin", PILE)], [Report(VT.garbage_overflow, PILE)])])[VT.garbage_overflow]
    assert (s.right, s.labelled) == (0, 0)
    assert s.precision == 0.0 and s.recall is None


def test_a_truck_needs_iou_half_and_a_report_inside_a_truck_does_not_count() -> None:
    labels = [Label("truck", TRUCK), Label("car", (300.0, 0.0, 400.0, 60.0))]
    reports = [
        Report(VT.unsealed_truck, (0.0, 0.0, 100.0, 100.0)),  # the cab only: IoU 0.5 exactly
        Report(VT.unsealed_truck, (20.0, 20.0, 80.0, 80.0)),  # inside the truck, IoU 0.18: wrong
        Report(VT.unsealed_truck, (300.0, 0.0, 400.0, 60.0)),  # the car: wrong
    ]
    s = score([photo(labels, reports)])[VT.unsealed_truck]
    assert (s.reports, s.right, s.labelled, s.found) == (3, 1, 1, 1)
    assert s.wrong_on == ["p.jpg"]


def test_signboards_need_iou_0_3_and_misses_count_against_recall() -> None:
    labels = [Label("signboard", (0.0, 0.0, 100.0, 50.0)), Label("signboard", (0.0, 100.0, 100.0, 150.0))]
    reports = [Report(VT.illegal_signboard, (0.0, 0.0, 100.0, 20.0))]  # IoU 0.4
    s = score([photo(labels, reports, "shop.jpg")])[VT.illegal_signboard]
    assert (s.right, s.found, s.labelled) == (1, 1, 2)
    assert s.recall == 0.5 and s.missed_on == ["shop.jpg"]


def test_every_vending_report_on_photos_without_a_vendor_is_wrong() -> None:
    results = [
        photo([Label("garbage", PILE)], [Report(VT.street_vending, PILE)], "a.jpg"),
        photo([], [Report(VT.street_vending, TRUCK)], "b.jpg"),
    ]
    s = score(results)[VT.street_vending]
    assert (s.reports, s.right) == (2, 0)
    assert s.precision == 0.0 and s.recall is None
    assert "| street_vending | 2 | 0 | 0.00 | 0 | 0 | – |" in table(score(results))


def test_reports_are_scored_against_their_own_photo_only() -> None:
    results = [
        photo([Label("truck", TRUCK)], [], "a.jpg"),
        photo([], [Report(VT.unsealed_truck, TRUCK)], "b.jpg"),
    ]
    s = score(results)[VT.unsealed_truck]
    assert (s.right, s.found) == (0, 0)


needs_shared = pytest.mark.skipif(
    not (SHARED / "vehicles" / "val").is_dir(), reason=f"needs the labelled photos in {SHARED}"
)


@needs_shared
def test_the_demo_box_on_a_few_real_photos(capsys: pytest.CaptureFixture[str]) -> None:
    # Three vehicle photos and three garbage photos, each held 4 frames, through the real pipeline.
    # The same config as its own baseline: two runs in one, nothing may change between them.
    argv = ["--sets", "vehicles,garbage", "--limit", "3", "--json", "--baseline", str(DEFAULT_CONFIG)]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["photos"] == 6
    assert result["baseline"]["types"] == result["types"]
    assert all(c == {"precision": 0.0, "recall": 0.0, "reports": 0} or None in c.values()
               for c in result["change"].values())  # fmt: skip
    assert "trucks_kept" in result["change"] and "trucks_kept" in result["change_completed"]
    types = result["types"]
    for counts in types.values():
        assert 0 <= counts["right"] <= counts["reports"]
        assert 0 <= counts["found"] <= counts["labelled"]
    assert types["garbage_overflow"]["labelled"] > 0 and types["garbage_overflow"]["found"] > 0
    assert types["unsealed_truck"]["labelled"] > 0 and types["unsealed_truck"]["found"] > 0
    assert types["street_vending"]["reports"] == 0
    by_set = result["by_set"]
    assert sorted(by_set) == ["garbage", "vehicles"]
    for vtype, counts in types.items():
        assert counts["reports"] == sum(by_set[s][vtype]["reports"] for s in by_set)
    assert by_set["garbage"]["unsealed_truck"]["labelled"] == 0  # no street truck among the first 3
    loads = result["truck_load"]  # the demo box runs the load stage: trucks before it are the detector level
    assert loads["load_stage"] is True and loads["photos"] == 3
    # Every truck the detector reported (the table's count) went out as a case or candidate, or was
    # silenced, or was too far to judge.
    sent = loads["cases"] + loads["candidates"] + loads["silenced"] + loads["too_far_to_judge"]
    assert sent == by_set["vehicles"]["unsealed_truck"]["reports"] > 0
    # The trucks the box keeps: the same labels, the detector's reports less any it called not a truck.
    kept, trucks = result["trucks_kept"], types["unsealed_truck"]
    assert kept["labelled"] == trucks["labelled"] and kept["reports"] <= trucks["reports"]
    assert trucks["reports"] - kept["reports"] <= loads["silenced"]
    # The same reports against the completed labels: none lost, only moved to ignore.
    for vtype, done in result["completed"]["types"].items():
        assert done["reports"] + done["ignored"] == types[vtype]["reports"]


def test_without_the_shared_photos_it_says_so_and_measures_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--data", str(tmp_path / "absent")]) == 0
    assert "nothing to measure" in capsys.readouterr().out


def test_an_unknown_set_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--sets", "garbage,cats"])
    assert "unknown set(s) cats" in capsys.readouterr().err


def test_a_config_that_does_not_exist_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "data").mkdir()
    assert main(["--config", str(tmp_path / "nope.yaml"), "--data", str(tmp_path / "data")]) == 2
    assert f"device config {tmp_path / 'nope.yaml'} does not exist" in capsys.readouterr().err


def test_a_set_without_validation_photos_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "data").mkdir()
    assert main(["--data", str(tmp_path / "data"), "--sets", "signboards"]) == 2
    assert (
        f"no validation photos at {tmp_path / 'data' / 'signboards' / 'val' / 'images'}"
        in capsys.readouterr().err
    )


def test_load_level_scores_cases_on_open_loads_and_counts_what_happened_to_each_truck() -> None:
    from bench.load_scoring import LoadLabel, TruckReport, score_loads

    open_load, tarp = (0.0, 0.0, 100.0, 100.0), (200.0, 0.0, 300.0, 100.0)
    box_van = (400.0, 0.0, 500.0, 100.0)
    labels = {
        "a.jpg": [
            LoadLabel(open_load, "open_bed_uncovered", "val"),
            LoadLabel(tarp, "covered", "train"),
            LoadLabel(box_van, "closed_body", "train"),
        ],
        "b.jpg": [LoadLabel(open_load, "partly_covered", "train")],
    }
    reports = {
        "a.jpg": [
            TruckReport((5.0, 0.0, 100.0, 100.0), "case"),  # on the open load
            TruckReport(tarp, "case"),  # a case on a tarp: wrong
            TruckReport(box_van, "silenced"),
            TruckReport((600.0, 0.0, 700.0, 100.0), "candidate"),  # on no labelled truck
        ],
        "b.jpg": [TruckReport(open_load, "silenced")],  # an open load lost by the stage
        "c.jpg": [TruckReport(open_load, "case")],  # a photo without load labels does not count
    }
    s = score_loads(labels, reports)
    assert (s.photos, s.open_loads, s.open_loads_held_out) == (2, 2, 1)
    assert (s.cases, s.cases_on_open, s.candidates, s.candidates_on_open) == (2, 1, 1, 0)
    assert s.precision == 0.5 and s.recall == 0.5 and s.recall_cases == 0.5 and s.open_silenced == 1
    assert s.as_dict()["by_label"] == {
        "closed_body": {"silenced": 1},
        "covered": {"case": 1},
        "open_bed_uncovered": {"case": 1},
        "partly_covered": {"silenced": 1},
    }
    assert s.unlabelled == {"candidate": 1}


def test_a_truck_too_far_to_judge_is_counted_apart_and_an_open_load_lost_that_way_is_named() -> None:
    from bench.load_scoring import LoadLabel, TruckReport, score_loads

    near, far = (0.0, 0.0, 100.0, 100.0), (300.0, 0.0, 320.0, 20.0)
    labels = {"a.jpg": [LoadLabel(near, "closed_body", "val"), LoadLabel(far, "open_bed_uncovered", "val")]}
    reports = {"a.jpg": [TruckReport(near, "silenced"), TruckReport(far, "too_far")]}
    s = score_loads(labels, reports)
    assert (s.silenced, s.too_far, s.cases, s.candidates) == (1, 1, 0, 0)
    assert s.open_silenced == 1 and s.recall == 0.0  # no case for that open load: the gate's cost
    assert s.as_dict()["too_far_to_judge"] == 1
    assert s.as_dict()["by_label"] == {"closed_body": {"silenced": 1}, "open_bed_uncovered": {"too_far": 1}}


def test_the_shipped_load_labels_give_the_vehicle_val_photos_their_open_loads() -> None:
    from bench.case_precision import LOAD_LABELS
    from bench.load_scoring import read_load_labels

    labels = read_load_labels(LOAD_LABELS)
    trucks = [lab for photo in labels.values() for lab in photo]
    assert trucks and all(lab.box[0] < lab.box[2] and lab.box[1] < lab.box[3] for lab in trucks)
    assert 0 < sum(lab.is_open for lab in trucks) < len(trucks)

"""Review data end to end: corrected boxes, added boxes, attributes and reject reasons on a live
server -> ``streetwatch dataset from-reviews`` -> a YOLO set the repository's importer reads back."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import cv2
import pytest

from streetwatch.cli import main
from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, store_evidence
from tests.server.api.test_reviews_to_training_set import (
    _labels,
    _seed_case,
    _trucks,
    export_reviews,
    live_url,
)
from training.datasets.importers import import_dataset
from training.datasets.taxonomy import load_taxonomy

__all__ = ["live_url"]  # the fixture, shared with the other end-to-end test


def _act(api: Api, case_id: int, **body: Any) -> dict[str, Any]:
    answer = api.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _frame_size(api: Api, case_id: int) -> tuple[int, int]:
    (event,) = api.get(f"/api/v1/cases/{case_id}").json()["events"]
    return event["frame_width"], event["frame_height"]


def test_review_data_becomes_labels(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _trucks(5)
    adjusted, hard, permitted, duplicate, unboxed = (
        _seed_case(api, photo, box, 1000 * i) for i, (photo, box) in enumerate(photos)
    )
    width, height = _frame_size(api, adjusted)  # the event's frame: twice the clean JPEG
    corrected = [0.10 * width, 0.20 * height, 0.50 * width, 0.70 * height]
    added = [0.60 * width, 0.10 * height, 0.90 * width, 0.40 * height]
    cargo = [0.20 * width, 0.20 * height, 0.45 * width, 0.35 * height]
    review = {
        "box": corrected,
        "added_boxes": [{"class_name": "car", "box": added}],
        "attributes": {"load": {"value": "partly_covered", "box": cargo}},
    }
    _act(api, adjusted, action="confirm", expected_state="new", review=review)
    _act(api, hard, action="reject", reject_reason="not_a_violation")
    _act(api, permitted, action="reject", reject_reason="permitted")
    _act(api, duplicate, action="reject", reject_reason="duplicate")
    # A truck, but a sealed one: no violation. Its load says it is a truck all the same.
    _act(api, unboxed, action="reject", reject_reason="not_a_violation",
         review={"attributes": {"load": {"value": "covered"}}})  # fmt: skip

    out = export_reviews(api, live_url, tmp_path)
    printed = capsys.readouterr().out
    assert "1 hard negatives written as images" in printed and "not exported: duplicate 1" in printed

    taxonomy = load_taxonomy()
    dataset = import_dataset(
        "yolo", out, source="reviews", taxonomy=taxonomy, mapping=taxonomy.identity_mapping()
    )
    assert dataset.report.problems == []
    by_name = {image.path.name.removeprefix("reviews__"): image for image in dataset.images}
    export = json.loads((out / "review_export.json").read_text())
    assert export["outcomes"] == {"confirmed": 1, "hard_negative": 2, "permitted": 1, "duplicate": 1}
    # 4 images: the duplicate is not exported; the hard negative is an image without boxes.
    assert len(dataset.images) == 4
    (negative,) = export["negatives"]
    assert negative["hard"] is True and by_name[negative["image"]].boxes == ()
    (allowed,) = export["permitted"]
    assert [b.class_name for b in by_name[allowed["image"]].boxes] == ["truck"]

    # The adjusted case: its corrected truck box, the car it missed and the open cargo bed.
    records = {(a["case_id"], a["name"]): a for a in export["attributes"]}
    image = by_name[records[(adjusted, "load")]["image"]]
    boxes = {b.class_name: b for b in image.boxes}
    assert set(boxes) == {"truck", "car", "uncovered_truck_load"}
    for name, expected in (("truck", corrected), ("car", added), ("uncovered_truck_load", cargo)):
        box = boxes[name]
        got = [box.x1 / image.width, box.y1 / image.height, box.x2 / image.width, box.y2 / image.height]
        want = [expected[0] / width, expected[1] / height, expected[2] / width, expected[3] / height]
        assert got == pytest.approx(want, abs=2e-3), name
    assert records[(adjusted, "load")]["written_as"] == "uncovered_truck_load"
    # Covered, but no cargo bed drawn: recorded in the manifest, not boxed. The truck is boxed,
    # not written as background: the rejection says it breaks no rule, not that it is no truck.
    covered = records[(unboxed, "load")]
    assert covered["class_name"] == "covered_truck_load" and covered["written_as"] is None
    assert [b.class_name for b in by_name[covered["image"]].boxes] == ["truck"]
    assert export["review_boxes"] == {"corrected": 1, "added": 1, "attribute": 1}

    # It plugs into the usual path: merge into a training set like any imported one.
    merged = tmp_path / "merged"
    assert main(["dataset", "merge", str(out), "--out", str(merged)]) == 0
    assert len(list(merged.glob("labels/*/*.txt"))) == 4
    assert len(_labels(out)) == 4
    assert cv2.imread(str(next(out.glob("images/train/*")))) is not None


def test_a_reviewed_frame_is_the_only_frame_exported_for_its_case(
    api: Api, live_url: str, tmp_path: Path
) -> None:
    track = uuid.uuid4()  # one truck seen twice: one case of two frames
    case_ids = set()
    for i, (photo, _) in enumerate(_trucks(2)):
        clean = photo.read_bytes()
        frame, crop = jpeg(10 + i), jpeg(20 + i)
        for data in (frame, crop, clean):
            store_evidence(api, data)
        height, width = cv2.imread(str(photo)).shape[:2]
        event = make_event(
            violation_type="unsealed_truck",
            detector_class="truck",
            track_id=track,
            observed_at=NOW + timedelta(seconds=i),
            score=0.5 + 0.2 * i,
            evidence=(frame, crop),
            clean=clean,
            box=(10, 10, width / 2, height / 2),
            frame_size=(width, height),
        )
        case_ids |= {o.case_id for o in ingest(api, event)}
    (case_id,) = case_ids
    assert case_id is not None
    events = api.get(f"/api/v1/cases/{case_id}").json()["events"]
    chosen = min(events, key=lambda e: e["score"])["event_id"]  # not the best frame
    _act(api, case_id, action="confirm", review={"event_id": chosen, "added_boxes": []})
    (item,) = api.get("/api/v1/labels").json()["items"]
    assert [(f["event_id"], f["reviewed"]) for f in item["frames"]] == [(chosen, True), (ANY, False)]
    out = export_reviews(api, live_url, tmp_path)
    (name,) = _labels(out)  # the frame the reviewer looked at, not the better-scoring one
    sha = next(f["clean_sha256"] for f in item["frames"] if f["reviewed"])
    assert name == f"reviews__{sha}"


def test_a_rejection_as_no_violation_keeps_the_object_only_when_its_value_says_it_is_real(
    api: Api, live_url: str, tmp_path: Path
) -> None:
    (truck_photo, truck_box), (stall_photo, stall_box) = _trucks(2)
    sealed = _seed_case(api, truck_photo, truck_box, 0)
    umbrella = _seed_case(api, stall_photo, stall_box, 3000, violation=("street_vending", "vending_stall"))
    covered = {"attributes": {"load": {"value": "covered"}}}
    _act(api, sealed, action="reject", reject_reason="not_a_violation", review=covered)
    no_goods = {"attributes": {"setup": {"value": "umbrella_only"}}}
    _act(api, umbrella, action="reject", reject_reason="not_a_violation", review=no_goods)
    flags = {
        item["case_id"]: [a["violation"] for a in item["attributes"]]
        for item in api.get("/api/v1/labels").json()["items"]
    }
    assert flags == {sealed: [False], umbrella: [None]}

    out = export_reviews(api, live_url, tmp_path)
    export = json.loads((out / "review_export.json").read_text())
    # A covered load: a truck all the same. An umbrella with no goods: no stall, a hard negative.
    assert [(n["case_id"], n["hard"]) for n in export["negatives"]] == [(umbrella, True)]
    taxonomy = load_taxonomy()
    dataset = import_dataset(
        "yolo", out, source="reviews", taxonomy=taxonomy, mapping=taxonomy.identity_mapping()
    )
    boxes = sorted([b.class_name for b in image.boxes] for image in dataset.images)
    assert boxes == [[], ["truck"]]

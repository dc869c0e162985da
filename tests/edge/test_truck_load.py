"""The truck load second stage, with the shipped classifier on real truck crops.

The crops in ``tests/edge/data/truck_load`` are real held-out trucks of the vehicle set (val
split, never trained on; CC BY 4.0, see that folder's README), cut with context around the
labelled box; ``boxes.json`` holds the box and the team's label (datasets/truck_load).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge.config import TruckLoadConfig
from edge.rules import TriggeredEvent
from edge.truck_load import LoadClassifier, LoadCounts, LoadStage
from streetwatch.errors import ModelFormatError
from streetwatch.events import TruckLoad, ViolationEvent
from streetwatch.paths import repo_root
from tests.test_events import make_event

MODEL = repo_root() / "models" / "truck-load" / "truck-load.onnx"
FIXTURES = Path(__file__).parent / "data" / "truck_load"
CASES: dict[str, dict[str, object]] = json.loads((FIXTURES / "boxes.json").read_text())
BoxT = tuple[float, float, float, float]


def _view(name: str) -> tuple[NDArray[np.uint8], BoxT]:
    image: NDArray[np.uint8] | None = cv2.imread(str(FIXTURES / f"{name}.jpg"))  # type: ignore[assignment]
    assert image is not None, name
    box = CASES[name]["box"]
    assert isinstance(box, list)
    return image, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))


def _named(label: str) -> str:
    return next(name for name, case in sorted(CASES.items()) if case["label"] == label)


def _truck_events(track: uuid.UUID, violation_type: str = "unsealed_truck") -> list[TriggeredEvent]:
    kinds = ("new", "update", "end")
    return [
        TriggeredEvent(
            event=make_event(
                violation_type=violation_type,
                detector_class="truck",
                candidate=True,
                track_id=track,
                sequence=i,
                lifecycle=kind,
            ),
            evidence_key=7,
        )
        for i, kind in enumerate(kinds)
    ]


@pytest.fixture(scope="module")
def classifier() -> LoadClassifier:
    return LoadClassifier(MODEL, ["CPUExecutionProvider"])


def test_the_model_describes_itself(classifier: LoadClassifier) -> None:
    assert classifier.classes == (
        TruckLoad.uncovered, TruckLoad.covered, TruckLoad.empty, TruckLoad.closed, TruckLoad.not_a_truck,
    )  # fmt: skip
    assert classifier.input_hw == (128, 128) and classifier.crop_margin == pytest.approx(0.1)
    assert classifier.label.startswith("truck-load ")


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_held_out_crops_get_their_labelled_load(classifier: LoadClassifier, name: str) -> None:
    verdict = classifier.classify(*_view(name))
    assert verdict.load.value == CASES[name]["label"], verdict.probabilities
    assert sum(verdict.probabilities.values()) == pytest.approx(1.0, abs=1e-4)


def test_a_detector_is_not_taken_for_a_load_classifier() -> None:
    with pytest.raises(ModelFormatError, match="must name its classes"):
        LoadClassifier(repo_root() / "models" / "yolox_nano" / "yolox_nano.onnx", ["CPUExecutionProvider"])


def test_an_open_load_raises_the_violation_once_classified_for_the_whole_track(
    classifier: LoadClassifier,
) -> None:
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL)))
    seen = _view(_named("uncovered"))
    out = stage.review(_truck_events(uuid.uuid4()), lambda _key: seen)
    assert [t.event.lifecycle.value for t in out] == ["new", "update", "end"]
    for triggered in out:
        attributes = triggered.event.attributes
        assert attributes is not None and attributes.load is TruckLoad.uncovered
        assert attributes.load_score is not None and attributes.load_score >= 0.6
        assert attributes.load_model == classifier.label
        assert triggered.event.candidate is False  # the load model answered what the candidate waited for
        assert triggered.evidence_key == 7
    assert stage.classified == 1 and stage.open_tracks == 0  # once per track; forgotten at its end
    assert stage.counts == LoadCounts(raised=1)  # counted per truck, not per event


@pytest.mark.parametrize("label", ["closed", "covered"])
def test_a_sealed_truck_raises_nothing(classifier: LoadClassifier, label: str) -> None:
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL)))
    seen = _view(_named(label))
    assert stage.review(_truck_events(uuid.uuid4()), lambda _key: seen) == []
    assert stage.silenced_events == 3 and stage.open_tracks == 0
    assert stage.counts == LoadCounts(silenced=1)  # what an operator sees instead of nothing


def test_an_unsure_answer_stays_a_candidate(classifier: LoadClassifier) -> None:
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL), min_score=0.9999))
    seen = _view(_named("closed"))
    (new, *_rest) = stage.review(_truck_events(uuid.uuid4()), lambda _key: seen)
    assert new.event.candidate is True
    assert new.event.attributes is not None and new.event.attributes.load is TruckLoad.unsure
    assert stage.counts == LoadCounts(unsure=1)
    # It says what the classifier leaned to, and how sure it was of that (schema 5).
    verdict = classifier.classify(*seen)
    assert new.event.attributes.load_likeliest is verdict.load is TruckLoad.closed
    assert new.event.attributes.load_score == pytest.approx(verdict.score, abs=1e-4)
    # The event still passes the wire contract as the server will read it.
    assert ViolationEvent.from_json(new.event.to_json()) == new.event


def test_a_truck_too_far_to_judge_raises_nothing_and_is_counted(classifier: LoadClassifier) -> None:
    # The open load of the fixtures, with the size gate set just above and then at its box's
    # shorter side: above, the classifier is not even asked and nothing leaves; at it, the load
    # is judged as before.
    image, box = _view(_named("uncovered"))
    side = int(min(box[2] - box[0], box[3] - box[1]))
    far = LoadStage(classifier, TruckLoadConfig(model=str(MODEL), min_side_px=side + 1))
    assert far.review(_truck_events(uuid.uuid4()), lambda _key: (image, box)) == []
    assert far.classified == 0 and far.open_tracks == 0
    assert far.counts == LoadCounts(too_small=1) and far.counts.trucks == 1
    assert far.telemetry().too_small == 1 and far.telemetry().silenced == 0

    near = LoadStage(classifier, TruckLoadConfig(model=str(MODEL), min_side_px=side))
    (new, *_rest) = near.review(_truck_events(uuid.uuid4()), lambda _key: (image, box))
    assert new.event.attributes is not None and new.event.attributes.load is TruckLoad.uncovered
    assert near.counts == LoadCounts(raised=1)


def _far(image: NDArray[np.uint8], box: BoxT, side: int) -> tuple[NDArray[np.uint8], BoxT]:
    """The same truck seen from further away: the frame shrunk until the box's shorter side is ``side``."""
    f = side / min(box[2] - box[0], box[3] - box[1])
    small: NDArray[np.uint8] = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
    return small, (box[0] * f, box[1] * f, box[2] * f, box[3] * f)


def test_a_truck_too_far_when_confirmed_is_judged_on_the_first_frame_it_is_near(
    classifier: LoadClassifier,
) -> None:
    # Confirmed far away (20 px), the open load is held, not judged. The stage looks again on every
    # frame (a frame without events too): the first one whose nearest view is big enough judges
    # it, once, and the held first event leaves right then, before the track's later events.
    near = _view(_named("uncovered"))
    far = _far(*near, side=20)
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL), min_side_px=28))
    new, update, end = _truck_events(uuid.uuid4())
    assert stage.review([new], lambda _key: far) == []
    assert stage.review([], lambda _key: far) == []  # a frame later, still far
    assert stage.open_tracks == 1 and stage.classified == 0 and stage.counts.trucks == 0
    (sent,) = stage.review([], lambda _key: near)  # the truck came near: judged on this frame
    assert sent.event.sequence == new.event.sequence and sent.event.lifecycle.value == "new"
    (later,) = stage.review([update], lambda _key: pytest.fail("a decided track is not looked at again"))
    (last,) = stage.review([end], lambda _key: pytest.fail("a decided track is not looked at again"))
    for triggered in (sent, later, last):
        assert triggered.event.attributes is not None
        assert triggered.event.attributes.load is TruckLoad.uncovered and triggered.event.candidate is False
    assert stage.classified == 1 and stage.counts == LoadCounts(raised=1) and stage.open_tracks == 0


def test_a_truck_that_stays_too_far_sends_nothing_across_its_events(classifier: LoadClassifier) -> None:
    far = _far(*_view(_named("uncovered")), side=20)
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL), min_side_px=28))
    for triggered in _truck_events(uuid.uuid4()):  # one event per call, as frames bring them
        assert stage.review([triggered], lambda _key: far) == []
    assert stage.classified == 0 and stage.open_tracks == 0
    assert stage.counts == LoadCounts(too_small=1) and stage.silenced_events == 3  # each event dropped


def test_other_violations_pass_untouched(classifier: LoadClassifier) -> None:
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL)))
    events = _truck_events(uuid.uuid4(), violation_type="garbage_overflow")
    assert stage.review(events, lambda _key: None) == events
    assert stage.classified == 0


def test_without_a_frame_the_truck_stays_a_candidate(classifier: LoadClassifier) -> None:
    stage = LoadStage(classifier, TruckLoadConfig(model=str(MODEL)))
    (new, _update, _end) = stage.review(_truck_events(uuid.uuid4()), lambda _key: None)
    assert new.event.candidate is True
    assert new.event.attributes is not None
    assert (new.event.attributes.load, new.event.attributes.load_score) == (TruckLoad.unsure, 0.0)
    assert new.event.attributes.load_likeliest is None  # nothing answered, nothing leaned to


def test_check_config_names_a_missing_or_wrong_load_model(tmp_path: Path) -> None:
    from edge.config import load_config
    from edge.config_check import check_device_config

    example = load_config(repo_root() / "deploy" / "edge.example.yaml")
    assert example.truck_load is not None and Path(example.truck_load.model) == MODEL  # resolved, shipped
    missing = example.model_copy(
        update={"truck_load": example.truck_load.model_copy(update={"model": str(tmp_path / "nope.onnx")})}
    )
    problems = check_device_config(missing, load_models=False).problems
    assert any(p.startswith("truck_load.model:") and "does not exist" in p for p in problems)
    detector = repo_root() / "models" / "yolox_nano" / "yolox_nano.onnx"
    wrong = example.model_copy(
        update={"truck_load": example.truck_load.model_copy(update={"model": str(detector)})}
    )
    report = check_device_config(wrong, load_models=True)
    assert any(p.startswith("truck_load.model:") and "must name its classes" in p for p in report.problems)


def test_a_measuring_stage_learns_why_each_truck_was_silenced(classifier: LoadClassifier) -> None:
    # bench.case_precision tells a truck the stage called "not a truck" from a sealed one: the
    # first is a wrong truck, the second a right truck that needs no case.
    from bench.case_precision import RecordingLoadStage

    stage = RecordingLoadStage(LoadStage(classifier, TruckLoadConfig(model=str(MODEL))))
    for label in ("uncovered", "closed", "not_a_truck"):
        crop = _view(_named(label))
        stage.review(_truck_events(uuid.uuid4()), lambda _key: crop)  # noqa: B023 (called right here)
    assert [(outcome, answer) for _event, outcome, answer in stage.trucks] == [
        ("case", None),
        ("silenced", TruckLoad.closed),
        ("silenced", TruckLoad.not_a_truck),
    ]


def test_a_measuring_stage_tells_a_truck_too_far_to_judge_from_a_silenced_one(
    classifier: LoadClassifier,
) -> None:
    from bench.case_precision import RecordingLoadStage

    image, box = _view(_named("closed"))
    side = int(min(box[2] - box[0], box[3] - box[1]))
    for gate, outcome in ((side + 1, "too_far"), (side, "silenced")):
        config = TruckLoadConfig(model=str(MODEL), min_side_px=gate)
        stage = RecordingLoadStage(LoadStage(classifier, config))
        stage.review(_truck_events(uuid.uuid4()), lambda _key: (image, box))
        assert [(o, answer) for _e, o, answer in stage.trucks] == [
            (outcome, None if outcome == "too_far" else TruckLoad.closed)
        ]

"""Weighted box fusion of several detectors' vehicle boxes, with car/bus/motorcycle as competitors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import DeviceConfig, FusionConfig
from edge.detections import Detections
from edge.detector.fusion import FUSED_CLASS_ID_BASE, BoxFusion

CLASSES = {"truck": ["truck"], "car": ["car"], "bus": ["bus"], "motorcycle": ["motorcycle", "motor"]}
TRUCK_BOX = (100.0, 100.0, 300.0, 220.0)

Row = tuple[int, str, float, tuple[float, float, float, float]]  # detector, class, score, box


def dets(rows: Sequence[Row]) -> Detections:
    return Detections(
        xyxy=np.array([r[3] for r in rows], dtype=np.float32).reshape(-1, 4),
        confidence=np.array([r[2] for r in rows], dtype=np.float32),
        class_id=np.arange(len(rows), dtype=np.int64),
        class_name=np.array([r[1] for r in rows], dtype=np.str_),
        detector_index=np.array([r[0] for r in rows], dtype=np.int64),
    )


def fusion(**kw: object) -> BoxFusion:
    settings: dict[str, object] = {"detectors": [0, 1], "report_as": 1, "classes": CLASSES, **kw}
    return BoxFusion(FusionConfig.model_validate(settings))


def near(box: tuple[float, float, float, float], dx: float = 4.0) -> tuple[float, float, float, float]:
    return (box[0] + dx, box[1], box[2] + dx, box[3])


def test_a_truck_overlapping_a_more_confident_car_becomes_a_car() -> None:
    out = fusion().fuse(dets([(0, "truck", 0.6, TRUCK_BOX), (1, "car", 0.8, near(TRUCK_BOX))]))
    assert out.class_name.tolist() == ["car"]
    assert out.confidence[0] == pytest.approx(0.4)  # mean over both members: (0 + 0.8) / 2


def test_two_members_agreeing_on_a_truck_keep_it_with_a_weighted_box() -> None:
    out = fusion().fuse(dets([(0, "truck", 0.6, TRUCK_BOX), (1, "truck", 0.9, near(TRUCK_BOX, 10))]))
    assert out.class_name.tolist() == ["truck"]
    assert out.confidence[0] == pytest.approx(0.75)
    # score-weighted mean of the two boxes: x1 = (100 * 0.6 + 110 * 0.9) / 1.5
    assert out.xyxy[0, 0] == pytest.approx(106.0)
    assert out.detector_index.tolist() == [1]
    assert out.class_id.tolist() == [FUSED_CLASS_ID_BASE + 0]


def test_a_truck_only_one_member_sees_is_halved_by_mean_and_kept_by_max() -> None:
    rows = [(0, "truck", 0.5, TRUCK_BOX)]
    assert len(fusion(conf=0.3).fuse(dets(rows))) == 0  # 0.25 < 0.3
    out = fusion(conf=0.3, score="max").fuse(dets(rows))
    assert out.class_name.tolist() == ["truck"]
    assert out.confidence[0] == pytest.approx(0.5)


def test_weights_scale_a_member_vote() -> None:
    rows = [(0, "truck", 0.7, TRUCK_BOX), (1, "car", 0.6, near(TRUCK_BOX))]
    assert fusion(score="max").fuse(dets(rows)).class_name.tolist() == ["truck"]
    assert fusion(score="max", weights=[0.5, 1.0]).fuse(dets(rows)).class_name.tolist() == ["car"]


def test_aliases_of_one_fused_class_vote_together() -> None:
    out = fusion().fuse(dets([(0, "motorcycle", 0.6, TRUCK_BOX), (1, "motor", 0.6, near(TRUCK_BOX))]))
    assert out.class_name.tolist() == ["motorcycle"]
    assert out.confidence[0] == pytest.approx(0.6)


def test_separate_objects_stay_separate() -> None:
    far = (500.0, 100.0, 700.0, 220.0)
    out = fusion(score="max").fuse(dets([(0, "truck", 0.6, TRUCK_BOX), (1, "car", 0.8, far)]))
    assert sorted(out.class_name.tolist()) == ["car", "truck"]


def test_other_classes_and_other_detectors_pass_through_unchanged() -> None:
    rows = [
        (1, "garbage", 0.7, (0.0, 0.0, 50.0, 50.0)),
        (2, "truck", 0.9, TRUCK_BOX),  # detector 2 is no member
        (0, "umbrella", 0.5, (10.0, 10.0, 40.0, 40.0)),
    ]
    out = fusion().fuse(dets(rows))
    assert sorted(zip(out.detector_index.tolist(), out.class_name.tolist(), strict=True)) == [
        (0, "umbrella"), (1, "garbage"), (2, "truck"),
    ]  # fmt: skip


def test_a_context_class_outvotes_a_truck_and_still_passes_through() -> None:
    classes = {**CLASSES, "bin": ["garbage_bin", "overflow"]}
    rows = [(0, "truck", 0.55, TRUCK_BOX), (1, "overflow", 0.8, near(TRUCK_BOX))]
    out = fusion(classes=classes, context=["bin"], score="max").fuse(dets(rows))
    assert out.class_name.tolist() == ["overflow"]  # no truck; the overflow box raises garbage as before
    assert out.detector_index.tolist() == [1]
    alone = fusion(classes=classes, context=["bin"], score="max").fuse(dets(rows[:1]))
    assert alone.class_name.tolist() == ["truck"]


def test_empty_input() -> None:
    assert len(fusion().fuse(Detections.empty())) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"report_as": 2}, "report_as"),
        ({"weights": [1.0]}, "one weight per"),
        ({"weights": [0.0, 0.0]}, "not all 0"),
        ({"detectors": [1, 1]}, "twice"),
        ({"classes": {"truck": ["truck"], "lorry": ["truck"]}}, "one fused class only"),
        ({"context": ["bin"]}, "fusion.context"),
    ],
)
def test_bad_fusion_settings_are_refused_with_the_reason(change: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"detectors": [0, 1], "report_as": 1, "classes": CLASSES, **change}
    with pytest.raises(ValidationError, match=message):
        FusionConfig.model_validate(settings)


def test_a_fusion_member_that_is_not_configured_is_refused() -> None:
    raw = {
        "device_id": "van-1",
        "source": {"kind": "images", "uri": "x"},
        "detectors": [{"model": "a.onnx"}, {"model": "b.onnx"}],
        "fusion": {"detectors": [0, 2], "report_as": 0, "classes": CLASSES},
        "class_map": [{"detector_class": "truck", "violation_type": "unsealed_truck"}],
    }
    with pytest.raises(ValidationError, match="only 2 detector"):
        DeviceConfig.model_validate(raw)

"""Test-time flip: the mirrored view's boxes come back in frame pixels, one box per object seen in
either view, scores merged as configured, other classes untouched, config checked."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from pydantic import ValidationError

from edge.config import DetectorConfig, DeviceConfig, FlipConfig
from edge.detections import Detections
from edge.detector.flipped import FlippedDetector, merge_views, with_flip
from edge.geometry import iou_matrix
from edge.interfaces import ModelInfo
from edge.startup import load_detectors, reporter_of
from streetwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"
PILE_PHOTO = REPO / "datasets" / "samples" / "images" / "garbage_atanu_000272.jpg"


def detections(rows: list[tuple[float, float, float, float, float, str]]) -> Detections:
    names = ["pile", "sign"]
    n = len(rows)
    return Detections(
        xyxy=np.asarray([r[:4] for r in rows], dtype=np.float32).reshape(n, 4),
        confidence=np.asarray([r[4] for r in rows], dtype=np.float32),
        class_id=np.asarray([names.index(r[5]) for r in rows], dtype=np.int64),
        class_name=np.asarray([r[5] for r in rows], dtype=np.str_).reshape(n),
        detector_index=np.zeros(n, dtype=np.int64),
    )


class LeftHalfOnly:
    """A detector double that finds an object only while it lies in the left half of the image: a
    model that sees an object in one view and not the other. Boxes are the white rectangles."""

    def __init__(self, name: str = "pile") -> None:
        self.info = ModelInfo("left-half", "1", ("pile", "sign"), (640, 640))
        self.name = name

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        mask = (image.min(axis=2) == 255).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        half = image.shape[1] / 2
        rows = [
            (float(x), float(y), float(x + w), float(y + h), 0.8 if x + w <= half else 0.6, self.name)
            for x, y, w, h, _ in stats[1:count].tolist()
        ]
        return detections(rows)


def test_boxes_of_one_object_from_both_views_become_one_box_with_the_mean_score() -> None:
    seen = detections([(10, 10, 50, 50, 0.8, "pile"), (100, 10, 140, 50, 0.5, "pile")])
    mirrored = detections([(12, 10, 52, 50, 0.4, "pile"), (300, 10, 340, 50, 0.6, "pile")])
    merged = merge_views(seen, mirrored, iou=0.55, merge="mean")
    by_x = sorted(zip(merged.xyxy[:, 0].tolist(), merged.confidence.tolist(), strict=True))
    # (10 * 0.8 + 12 * 0.4) / 1.2: the box leans to the surer view; alone, a box scores half.
    assert [(round(x, 2), round(s, 2)) for x, s in by_x] == [(10.67, 0.6), (100.0, 0.25), (300.0, 0.3)]
    kept = merge_views(seen, mirrored, iou=0.55, merge="max")
    assert sorted(kept.confidence.tolist()) == pytest.approx([0.5, 0.6, 0.8])


def test_single_view_sets_the_share_a_box_one_view_alone_sees_keeps() -> None:
    seen = detections([(10, 10, 50, 50, 0.8, "pile"), (100, 10, 140, 50, 0.5, "pile")])
    mirrored = detections([(12, 10, 52, 50, 0.4, "pile")])
    merged = merge_views(seen, mirrored, iou=0.55, merge="mean", single_view=0.7)
    # The pair still scores the mean of its two views; only the lone box changes (0.5 * 0.7).
    assert sorted(merged.confidence.tolist()) == pytest.approx([0.35, 0.6])
    kept = merge_views(seen, mirrored, iou=0.55, merge="max", single_view=0.7)
    assert sorted(kept.confidence.tolist()) == pytest.approx([0.35, 0.8])


class StrictlyLeft(LeftHalfOnly):
    """Sees nothing at all in the right half: an object there is found by the mirrored view alone."""

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        found = super().detect(image)
        return found[found.confidence > 0.7]


def test_single_view_comes_from_the_config() -> None:
    config = DetectorConfig(model="det.onnx", flip=FlipConfig(merge="mean", single_view=0.7))
    image = np.full((100, 200, 3), 90, dtype=np.uint8)
    image[20:40, 150:190] = 255  # only the mirrored view finds it, at 0.8
    found = with_flip(StrictlyLeft(), config).detect(image)
    assert found.confidence.tolist() == pytest.approx([0.56])
    with pytest.raises(ValidationError):
        FlipConfig(single_view=0)
    with pytest.raises(ValidationError):
        FlipConfig(single_view=1.5)


def test_boxes_are_merged_only_across_views_and_within_a_class() -> None:
    # Two overlapping boxes from one view stay two (the detector's NMS kept both); a sign and a
    # pile in one place are two objects.
    seen = detections([(0, 0, 40, 40, 0.9, "pile"), (4, 0, 44, 40, 0.7, "pile")])
    mirrored = detections([(0, 0, 40, 40, 0.8, "sign")])
    merged = merge_views(seen, mirrored, iou=0.5, merge="max")
    assert sorted(merged.class_name.tolist()) == ["pile", "pile", "sign"]
    assert merge_views(Detections.empty(), Detections.empty(), 0.5, "mean").xyxy.shape == (0, 4)


def test_the_mirrored_views_box_comes_back_in_frame_pixels() -> None:
    image = np.full((100, 200, 3), 90, dtype=np.uint8)
    image[20:40, 150:190] = 255  # in the right half: only the mirrored view finds it
    found = FlippedDetector(LeftHalfOnly(), iou=0.55, merge="max", classes=None).detect(image)
    assert found.xyxy.tolist() == [pytest.approx([150.0, 20.0, 190.0, 40.0], abs=1e-3)]
    assert found.confidence.tolist() == pytest.approx([0.8])
    halved = FlippedDetector(LeftHalfOnly(), iou=0.55, merge="mean", classes=None).detect(image)
    assert halved.confidence.tolist() == pytest.approx([0.7])  # 0.8 mirrored, 0.6 as it is


def test_classes_not_named_come_from_the_frame_alone() -> None:
    image = np.full((100, 200, 3), 90, dtype=np.uint8)
    image[20:40, 150:190] = 255
    flipped = FlippedDetector(LeftHalfOnly("sign"), iou=0.55, merge="mean", classes=["pile"])
    found = flipped.detect(image)
    assert found.confidence.tolist() == pytest.approx([0.6])  # as without flip
    with pytest.raises(ConfigError, match=r"flip.classes \['bin'\] are not classes of model left-half"):
        FlippedDetector(LeftHalfOnly(), iou=0.55, merge="mean", classes=["pile", "bin"])


def test_the_shipped_model_mirrored_gives_the_mirror_of_its_answer() -> None:
    """On a real photo: the frame and its mirror image give mirror-image answers, and piles the
    single pass finds are found (the mirror adds views, it does not move boxes)."""
    from edge.detector import load_detector

    if not MODEL.is_file() or not PILE_PHOTO.is_file():
        pytest.skip("the shipped model or the sample photo is absent")
    cfg = DetectorConfig(model=str(MODEL), conf=0.1, providers=["CPUExecutionProvider"])
    single = load_detector(cfg, 0, threads=1)
    flipped = FlippedDetector(single, iou=0.55, merge="mean", classes=["garbage", "overflow", "garbage_bin"])
    photo = np.asarray(cv2.imread(str(PILE_PHOTO)), dtype=np.uint8)
    width = photo.shape[1]
    here = flipped.detect(photo)
    there = flipped.detect(np.ascontiguousarray(photo[:, ::-1]))
    assert len(here) == len(there) > 0

    def rows(found: Detections, mirror: bool) -> list[tuple[str, float, float, float]]:
        x1, x2 = found.xyxy[:, 0], found.xyxy[:, 2]
        left = width - x2 if mirror else x1
        return sorted(
            (str(n), round(float(c), 2), round(float(a), -1), round(float(y), -1))
            for n, c, a, y in zip(found.class_name, found.confidence, left, found.xyxy[:, 1], strict=True)
        )

    assert rows(here, mirror=False) == rows(there, mirror=True)
    piles = single.detect(photo)
    piles = piles[(piles.class_name == "overflow") & (piles.confidence >= 0.4)]
    assert len(piles) > 0
    merged = here[here.class_name == "overflow"]
    assert (iou_matrix(piles.xyxy, merged.xyxy).max(axis=1) > 0.8).all()
    signs_alone = single.detect(photo)
    signs_alone = signs_alone[signs_alone.class_name == "signboard"]
    assert np.array_equal(
        np.sort(here[here.class_name == "signboard"].confidence), np.sort(signs_alone.confidence)
    )


def test_the_box_loads_a_detector_mirrored_only_where_its_config_says_and_check_config_says_so() -> None:
    from edge.config_check import ConfigReport, describe

    config = DeviceConfig.model_validate(
        {
            "device_id": "box-1",
            "source": {"kind": "images", "uri": "."},
            "detectors": [
                {"model": "a.onnx"},
                {"model": "b.onnx", "flip": {"classes": ["pile"]}},
                {"model": "c.onnx", "flip": {"merge": "max"}, "tiles": {"rows": 2, "cols": 2}},
            ],
            "class_map": [{"detector_class": "pile", "violation_type": "garbage_overflow"}],
        }
    )
    loaded = load_detectors(config, 1, reporter_of(None), lambda cfg, index, threads: LeftHalfOnly())
    assert isinstance(loaded[0], LeftHalfOnly)
    assert isinstance(loaded[1], FlippedDetector) and loaded[1].merge == "mean"
    assert isinstance(loaded[2], FlippedDetector) and loaded[2].merge == "max"
    lines = [line for line in describe(config, ConfigReport()) if line.startswith("detector")]
    assert "mirrored" not in lines[0]
    assert lines[1].endswith("; mirrored too, pile merged by mean score: 2 runs/frame)")
    assert lines[2].endswith("mirrored too, every class merged by max score: 10 runs/frame)")


@pytest.mark.parametrize(
    ("flip", "message"),
    [({"merge": "min"}, "merge"), ({"iou": 0}, "iou"), ({"classes": []}, "classes"), ({"flip": 1}, "flip")],
)
def test_bad_flip_settings_are_refused_naming_the_setting(flip: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DetectorConfig.model_validate({"model": "m.onnx", "flip": flip})


def test_a_model_update_keeps_the_detector_mirrored_and_refuses_a_model_without_its_classes() -> None:
    from edge.detector import load_detector
    from edge.frames import Frame
    from edge.updates.artifact import UpdateRefused
    from edge.updates.probe import probe_model

    if not MODEL.is_file() or not PILE_PHOTO.is_file():
        pytest.skip("the shipped model or the sample photo is absent")
    flip = FlipConfig(classes=["garbage", "overflow"])
    cfg = DetectorConfig(model=str(MODEL), conf=0.25, providers=["CPUExecutionProvider"], flip=flip)

    def box(detector: DetectorConfig) -> DeviceConfig:
        return DeviceConfig.model_validate(
            {
                "device_id": "box-1",
                "source": {"kind": "images", "uri": "."},
                "detectors": [detector.model_dump()],
                "class_map": [{"detector_class": "overflow", "violation_type": "garbage_overflow"}],
            }
        )

    running = FlippedDetector(load_detector(cfg, 0, threads=1), flip.iou, flip.merge, flip.classes)
    image = np.asarray(cv2.imread(str(PILE_PHOTO)), dtype=np.uint8)
    frame = Frame(image=image, timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc), index=0, source="test")
    new, report = probe_model(
        MODEL, config=box(cfg), index=0, name="det", version="2", old=running, frames=[frame], max_drift=0.6
    )
    assert isinstance(new, FlippedDetector) and new.merge == "mean"
    assert report.new_detections == report.old_detections > 0 and report.drift == 0.0
    wrong = cfg.model_copy(update={"flip": FlipConfig(classes=["garbage", "rubble"])})
    with pytest.raises(UpdateRefused, match=r"does not fit the box's config: flip.classes \['rubble'\]"):
        probe_model(
            MODEL,
            config=box(wrong),
            index=0,
            name="det",
            version="2",
            old=running,
            frames=[frame],
            max_drift=0.6,
        )

"""Class-aware NMS, against torchvision's batched_nms on a saved crowded case."""

from pathlib import Path

import numpy as np

from edge.detector.nms import nms
from edge.geometry import box_iou_one_to_many

DATA = Path(__file__).parent / "data" / "detector"


def test_matches_torchvision_batched_nms_on_saved_boxes():
    case = np.load(DATA / "nms_case.npz")
    keep = nms(case["boxes"], case["scores"], case["classes"], float(case["iou"]), max_det=10_000)
    assert len(keep) < len(case["boxes"])  # the case really suppresses something
    np.testing.assert_array_equal(keep, case["keep"])


def test_other_classes_never_suppress():
    boxes = np.array([[0, 0, 10, 10]] * 3, dtype=np.float32)
    keep = nms(boxes, np.array([0.5, 0.9, 0.7], np.float32), np.array([0, 1, 0]), 0.5)
    assert keep.tolist() == [1, 2]


def test_max_det_and_empty_input():
    boxes = np.array([[0, 0, 1, 1], [5, 5, 6, 6], [9, 9, 10, 10]], dtype=np.float32)
    assert nms(
        boxes, np.array([0.1, 0.3, 0.2], np.float32), np.zeros(3, np.int64), 0.5, max_det=2
    ).tolist() == [1, 2]
    assert nms(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64), 0.5).size == 0


def test_iou_of_known_boxes():
    iou = box_iou_one_to_many(
        np.array([0, 0, 10, 10], np.float32), np.array([[5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    )
    np.testing.assert_allclose(iou, [50 / 150, 0.0])

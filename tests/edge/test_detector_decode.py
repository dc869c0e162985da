"""Pure decode functions on saved real head outputs, checked against independent references.

The saved arrays come from ``data/detector/make_fixtures.py``: the shipped YOLOX-nano's raw
output on a real traffic photo; expected boxes from a row-by-row decode of the YOLOX spec and
ultralytics' own ``non_max_suppression``.
"""

from pathlib import Path

import numpy as np
import pytest

from edge.detector.decode import decode_end2end, decode_yolov8, decode_yolox, yolox_grid

DATA = Path(__file__).parent / "data" / "detector"


def _assert_same(raw, expected):
    assert len(raw) == len(expected) > 0
    np.testing.assert_allclose(raw.xyxy, expected[:, :4], atol=1e-3)
    np.testing.assert_allclose(raw.scores, expected[:, 4], atol=1e-5)
    np.testing.assert_array_equal(raw.class_ids, expected[:, 5].astype(np.int64))


def test_yolov8_decode_matches_ultralytics_nms():
    case = np.load(DATA / "yolov8_head.npz")
    raw = decode_yolov8(case["output"], float(case["conf"]), float(case["iou"]))
    _assert_same(raw, case["expected"])


def test_yolox_decode_matches_reference():
    case = np.load(DATA / "yolox_head.npz")
    full = np.zeros((int(case["num_rows"]), case["rows"].shape[1]), dtype=np.float32)
    full[case["row_index"]] = case["rows"]
    input_hw = (int(case["input_hw"][0]), int(case["input_hw"][1]))
    raw = decode_yolox(full[None], input_hw, float(case["conf"]), float(case["iou"]))
    _assert_same(raw, case["expected"])


def test_yolox_grid_rows_follow_strides_row_major():
    grid = yolox_grid((64, 32))
    assert grid.shape == (8 * 4 + 4 * 2 + 2 * 1, 3)
    assert grid[:5].tolist() == [[0, 0, 8], [1, 0, 8], [2, 0, 8], [3, 0, 8], [0, 1, 8]]
    assert grid[-1].tolist() == [0, 1, 32]


def test_yolox_decode_of_one_hand_made_row():
    input_hw = (64, 64)
    out = np.zeros((1, yolox_grid(input_hw).shape[0], 5 + 2), dtype=np.float32)
    row = 8 * 8 + 4 * 1 + 2  # stride-16 level, grid x=2, y=1
    out[0, row] = [0.5, 0.5, np.log(2.0), 0.0, 0.8, 0.1, 0.9]
    raw = decode_yolox(out, input_hw, conf=0.25, iou=0.45)
    # centre ((0.5 + 2) × 16, (0.5 + 1) × 16) = (40, 24); size (32, 16)
    np.testing.assert_allclose(raw.xyxy, [[24, 16, 56, 32]])
    np.testing.assert_allclose(raw.scores, [0.72])
    assert raw.class_ids.tolist() == [1]


def test_end2end_keeps_rows_over_conf_best_first():
    out = np.zeros((1, 5, 6), dtype=np.float32)
    out[0, 0] = [1, 2, 3, 4, 0.3, 2]
    out[0, 1] = [5, 6, 7, 8, 0.9, 0]
    out[0, 2] = [9, 9, 9, 9, 0.1, 1]  # under conf; rows 3, 4 are the zero padding
    raw = decode_end2end(out, conf=0.25)
    assert raw.xyxy.tolist() == [[5, 6, 7, 8], [1, 2, 3, 4]]
    assert raw.class_ids.tolist() == [0, 2]


def test_low_conf_caps_the_work_and_max_det_holds():
    rng = np.random.default_rng(0)
    out = np.concatenate(
        [
            rng.uniform(0, 160, (1, 2, 3000)),
            rng.uniform(2, 40, (1, 2, 3000)),
            rng.uniform(0, 1, (1, 3, 3000)),
        ],
        axis=1,
    ).astype(np.float32)
    raw = decode_yolov8(out, conf=0.001, iou=0.45, max_det=50)
    assert len(raw) == 50 and (np.diff(raw.scores) <= 0).all()


@pytest.mark.parametrize(
    ("func", "shape"),
    [
        (lambda a: decode_yolov8(a, 0.25, 0.45), (1, 3, 100)),
        (lambda a: decode_end2end(a, 0.25), (1, 300, 7)),
        (lambda a: decode_yolox(a, (416, 416), 0.25, 0.45), (1, 3000, 85)),
    ],
)
def test_wrong_output_shape_names_the_shape(func, shape):
    with pytest.raises(ValueError, match=str(shape).replace("(", r"\(").replace(")", r"\)")):
        func(np.zeros(shape, dtype=np.float32))

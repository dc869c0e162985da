"""Letterbox placement and its inverse, against ultralytics' LetterBox output saved as arrays."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.detector.letterbox import PAD_VALUE, LetterboxMeta, boxes_to_original, letterbox, to_tensor

DATA = Path(__file__).parent / "data" / "detector"


@pytest.fixture(scope="module")
def cases():
    return np.load(DATA / "letterbox_cases.npz")


@pytest.mark.parametrize("name", ["wide", "tall", "up", "flat"])
def test_centred_letterbox_matches_ultralytics(cases, name):
    image, input_hw = cases[f"{name}_image"], tuple(int(v) for v in cases[f"{name}_input_hw"])
    canvas, meta = letterbox(image, input_hw, center=True)
    expected = cases[f"{name}_expected"]
    assert canvas.shape == expected.shape == (*input_hw, 3)
    np.testing.assert_array_equal(canvas, expected)
    assert meta.orig_hw == image.shape[:2] and meta.input_hw == input_hw


def test_top_left_placement_pads_right_and_bottom_only():
    image = np.full((30, 60, 3), 7, dtype=np.uint8)
    canvas, meta = letterbox(image, (64, 64), center=False)
    assert (meta.pad_x, meta.pad_y) == (0, 0)
    assert meta.scale_x == pytest.approx(64 / 60) and meta.scale_y == pytest.approx(32 / 30)
    assert (canvas[:32, :64] == 7).all()
    assert (canvas[32:] == PAD_VALUE).all()


def test_centred_placement_splits_the_padding():
    image = np.full((30, 60, 3), 7, dtype=np.uint8)
    canvas, meta = letterbox(image, (64, 64), center=True)
    assert (meta.pad_x, meta.pad_y) == (0, 16)
    assert (canvas[:16] == PAD_VALUE).all() and (canvas[48:] == PAD_VALUE).all()
    assert (canvas[16:48] == 7).all()


@pytest.mark.parametrize("center", [True, False])
def test_boxes_round_trip_to_original_pixels(center):
    h0, w0 = 480, 640
    image = np.zeros((h0, w0, 3), dtype=np.uint8)
    _, meta = letterbox(image, (320, 320), center=center)
    original = np.array([[10, 20, 300, 400], [600, 0, 640, 480]], dtype=np.float32)
    in_input = original.copy()
    in_input[:, [0, 2]] = in_input[:, [0, 2]] * meta.scale_x + meta.pad_x
    in_input[:, [1, 3]] = in_input[:, [1, 3]] * meta.scale_y + meta.pad_y
    np.testing.assert_allclose(boxes_to_original(in_input, meta), original, atol=1e-3)


def test_boxes_are_clipped_to_the_image():
    meta = LetterboxMeta(orig_hw=(100, 200), input_hw=(64, 64), scale_x=0.32, scale_y=0.32, pad_x=0, pad_y=16)
    out = boxes_to_original(np.array([[-5, 0, 70, 64]], dtype=np.float32), meta)
    assert out.tolist() == [[0, 0, 200, 100]]


def test_to_tensor_swaps_channels_and_scales():
    canvas = np.zeros((2, 3, 3), dtype=np.uint8)
    canvas[..., 0], canvas[..., 1], canvas[..., 2] = 10, 20, 30  # B, G, R
    rgb = to_tensor(canvas, rgb=True, scale=0.5)
    bgr = to_tensor(canvas, rgb=False, scale=1.0)
    assert rgb.shape == bgr.shape == (1, 3, 2, 3) and rgb.dtype == np.float32
    assert rgb[0, :, 0, 0].tolist() == [15, 10, 5]
    assert bgr[0, :, 0, 0].tolist() == [10, 20, 30]


def test_to_tensor_matches_opencvs_blob_on_a_full_size_input():
    canvas = np.random.default_rng(3).integers(0, 256, (416, 416, 3), dtype=np.uint8)
    for rgb, scale in ((True, 1 / 255), (False, 1.0)):
        reference = cv2.dnn.blobFromImage(canvas, scalefactor=scale, swapRB=rgb)
        ours = to_tensor(canvas, rgb=rgb, scale=scale)
        assert ours.flags.c_contiguous
        np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-6)

"""Regenerate the saved arrays the detector unit tests read (run from the repository root).

    python tests/edge/data/detector/make_fixtures.py

Expected values come from references independent of ``edge.detector``:
ultralytics' ``LetterBox`` and ``non_max_suppression``, torchvision's
``batched_nms`` and a row-by-row YOLOX decode written from the model's spec.
The raw YOLOX output is the shipped model's answer on a real street photo.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import torch
import torchvision
from ultralytics.data.augment import LetterBox
from ultralytics.utils.nms import non_max_suppression

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[3]
SHARED = REPO.parent / "shared" / "data"
CONF, IOU = 0.25, 0.45


def letterbox_cases() -> None:
    rng = np.random.default_rng(7)
    arrays: dict[str, np.ndarray] = {}
    for name, (h, w), (ih, iw) in (
        ("wide", (37, 53), (32, 32)),
        ("tall", (90, 20), (48, 64)),
        ("up", (9, 7), (32, 32)),
        ("flat", (21, 60), (32, 32)),
    ):
        image = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        arrays[f"{name}_image"] = image
        arrays[f"{name}_input_hw"] = np.array([ih, iw])
        arrays[f"{name}_expected"] = LetterBox(new_shape=(ih, iw), auto=False, center=True)(image=image)
    np.savez_compressed(HERE / "letterbox_cases.npz", **arrays)


def nms_case() -> None:
    rng = np.random.default_rng(11)
    n = 240
    xy = rng.uniform(0, 80, size=(n, 2))  # crowded: many overlaps
    wh = rng.uniform(8, 60, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
    scores = rng.uniform(0, 1, size=n).astype(np.float32)
    classes = rng.integers(0, 3, size=n)
    keep = torchvision.ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(classes), IOU
    ).numpy()
    np.savez_compressed(
        HERE / "nms_case.npz", boxes=boxes, scores=scores, classes=classes, keep=keep, iou=IOU
    )


def yolox_reference_decode(raw: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """(N, 4 + nc) rows cx, cy, w, h, obj × cls — one grid point at a time, straight from the spec."""
    rows = []
    i = 0
    for stride in (8, 16, 32):
        for gy in range(input_hw[0] // stride):
            for gx in range(input_hw[1] // stride):
                r = raw[i]
                cx, cy = (r[0] + gx) * stride, (r[1] + gy) * stride
                w, h = math.exp(r[2]) * stride, math.exp(r[3]) * stride
                rows.append([cx, cy, w, h, *(r[5:] * r[4])])
                i += 1
    return np.asarray(rows, dtype=np.float32)


def head_cases() -> None:
    image = cv2.imread(str(SHARED / "vehicles" / "val" / "images" / "vnv_101_jpg.jpg"))
    input_hw = (416, 416)
    r = min(input_hw[0] / image.shape[0], input_hw[1] / image.shape[1])
    canvas = np.full((*input_hw, 3), 114, np.uint8)
    resized = cv2.resize(image, (round(image.shape[1] * r), round(image.shape[0] * r)))
    canvas[: resized.shape[0], : resized.shape[1]] = resized
    session = ort.InferenceSession(str(REPO / "models" / "yolox_nano" / "yolox_nano.onnx"))
    tensor = canvas.transpose(2, 0, 1)[None].astype(np.float32)
    raw = session.run(None, {"images": tensor})[0][0]  # (3549, 85)

    decoded = yolox_reference_decode(raw, input_hw)  # (3549, 84) in the ultralytics row layout
    head = torch.from_numpy(decoded.T[None].copy())  # (1, 84, 3549), as a yolov8 export would give
    expected = non_max_suppression(head, conf_thres=CONF, iou_thres=IOU, max_det=300)[0].numpy()

    # YOLOX fixture: only rows with some objectness are stored (the rest are zeros, far below CONF).
    rows = np.flatnonzero(raw[:, 4] > 0.01)
    np.savez_compressed(
        HERE / "yolox_head.npz",
        row_index=rows,
        rows=raw[rows],
        num_rows=raw.shape[0],
        input_hw=np.array(input_hw),
        expected=expected,
        conf=CONF,
        iou=IOU,
    )
    # yolov8 fixture: the same boxes in the (1, 4 + nc, N) layout, keeping the rows that could pass CONF.
    top = np.flatnonzero(decoded[:, 4:].max(axis=1) > 0.01)
    np.savez_compressed(
        HERE / "yolov8_head.npz", output=decoded[top].T[None].copy(), expected=expected, conf=CONF, iou=IOU
    )


if __name__ == "__main__":
    letterbox_cases()
    nms_case()
    head_cases()
    for f in sorted(HERE.glob("*.npz")):
        print(f.name, f.stat().st_size)

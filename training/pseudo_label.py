"""Pseudo-label COCO classes in photos with the YOLOX-nano ONNX model.

Each real source labels only its own classes: a truck in a garbage photo is
unlabelled. Training on such a merge would teach the model that those trucks are
background, so before merging we let a COCO detector label the vehicle classes in
the photos that lack them. Only confident detections are kept (a missed vehicle
costs less than a hallucinated one that the model then learns as truth).

The decode follows the model's published layout: input ``images`` 1×3×S×S, BGR
0–255, resized keeping the aspect ratio and placed top-left on a 114 canvas;
output 1×N×85 per grid point of strides 8/16/32 (xy offsets, log wh, objectness,
80 sigmoid class scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streetwatch.errors import ModelFormatError, ModelNotFoundError

#: COCO class index -> our class name, for the classes the vehicle set labels.
COCO_VEHICLES: dict[int, str] = {2: "car", 3: "motor", 5: "bus", 7: "truck"}

STRIDES: tuple[int, ...] = (8, 16, 32)


@dataclass(frozen=True)
class PseudoBox:
    """One detection in pixel corners of the original image."""

    class_name: str
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


class YoloxPseudoLabeler:
    """Runs YOLOX-nano on BGR images and returns the confident boxes of chosen COCO classes."""

    def __init__(
        self,
        model_path: Path,
        classes: dict[int, str] | None = None,
        conf: float = 0.5,
        iou: float = 0.5,
    ) -> None:
        import onnxruntime as ort

        if not model_path.is_file():
            raise ModelNotFoundError(f"YOLOX model not found: {model_path}")
        self.session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if len(shape) != 4 or not isinstance(shape[2], int):
            raise ModelFormatError(f"{model_path}: expected a fixed 1x3xSxS input, got {shape}")
        self.input_name: str = inp.name
        self.size: int = int(shape[2])
        self.classes = classes if classes is not None else COCO_VEHICLES
        self.conf = conf
        self.iou = iou
        self.grid, self.stride_per_point = self._grids(self.size)

    @staticmethod
    def _grids(size: int) -> tuple[np.ndarray, np.ndarray]:
        grids, strides = [], []
        for stride in STRIDES:
            n = size // stride
            ys, xs = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
            grids.append(np.stack([xs, ys], axis=-1).reshape(-1, 2))
            strides.append(np.full((n * n, 1), stride))
        return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)

    def _preprocess(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        import cv2

        h, w = image.shape[:2]
        ratio = min(self.size / h, self.size / w)
        resized = cv2.resize(image, (round(w * ratio), round(h * ratio)), interpolation=cv2.INTER_LINEAR)
        canvas = np.full((self.size, self.size, 3), 114, dtype=np.uint8)
        canvas[: resized.shape[0], : resized.shape[1]] = resized
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32)
        return blob, ratio

    def __call__(self, image: np.ndarray) -> list[PseudoBox]:
        import cv2

        blob, ratio = self._preprocess(image)
        out: Any = self.session.run(None, {self.input_name: blob})[0][0]
        if out.shape[0] != self.grid.shape[0]:
            raise ModelFormatError(f"YOLOX output has {out.shape[0]} rows, expected {self.grid.shape[0]}")
        xy = (out[:, :2] + self.grid) * self.stride_per_point
        wh = np.exp(out[:, 2:4]) * self.stride_per_point
        corners = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ratio
        boxes: list[PseudoBox] = []
        for coco_id, name in self.classes.items():
            scores = out[:, 4] * out[:, 5 + coco_id]
            keep = np.flatnonzero(scores >= self.conf)
            if keep.size == 0:
                continue
            xywh = [[float(c[0]), float(c[1]), float(c[2] - c[0]), float(c[3] - c[1])] for c in corners[keep]]
            chosen = cv2.dnn.NMSBoxes(xywh, scores[keep].tolist(), self.conf, self.iou)
            for i in np.asarray(chosen).reshape(-1):
                x1, y1, x2, y2 = corners[keep[i]]
                boxes.append(
                    PseudoBox(name, float(scores[keep[i]]), float(x1), float(y1), float(x2), float(y2))
                )
        return boxes

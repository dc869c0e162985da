"""Decoder backends: thin plugins pairing a preprocessing with a pure decode function.

A backend knows three things about a model family: how to place an image into
the input tensor, which decode function reads its output, and how to recognise
its output shape (for ``decoder: auto``). Adding a family means adding one class
here and one decode function in ``decode.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from edge.detector.decode import RawDetections, decode_end2end, decode_yolov8, decode_yolox, yolox_grid
from edge.detector.letterbox import LetterboxMeta, letterbox, to_tensor
from edge.detector.metadata import ModelMetadata
from streetwatch.errors import ModelFormatError

Shape = tuple[int, ...]


@dataclass(frozen=True)
class DecodeParams:
    conf: float
    iou: float
    max_det: int = 300


class Backend:
    """Base of every backend; subclasses set the class attributes and ``decode``."""

    name: ClassVar[str]
    center: ClassVar[bool]  # letterbox placement: centred (ultralytics) or top-left (YOLOX)
    rgb: ClassVar[bool]
    scale: ClassVar[float]  # multiplies 0–255 pixel values

    def preprocess(
        self, image: NDArray[np.uint8], input_hw: tuple[int, int]
    ) -> tuple[NDArray[np.float32], LetterboxMeta]:
        canvas, meta = letterbox(image, input_hw, center=self.center)
        return to_tensor(canvas, rgb=self.rgb, scale=self.scale), meta

    def decode(
        self, outputs: list[NDArray[np.float32]], input_hw: tuple[int, int], params: DecodeParams
    ) -> RawDetections:
        raise NotImplementedError

    def num_classes(self, output_shape: Shape, input_hw: tuple[int, int]) -> int | None:
        """Classes the output encodes, or ``None`` when its shape does not tell; raise if it cannot fit."""
        raise NotImplementedError

    @staticmethod
    def recognises(output_shape: Shape, input_hw: tuple[int, int], meta: ModelMetadata) -> bool:
        raise NotImplementedError


def _bad(backend: str, shape: Shape, expected: str) -> ModelFormatError:
    return ModelFormatError(
        f"decoder {backend!r} expects an output of shape {expected}, the model gives {shape}"
    )


class YoloV8Backend(Backend):
    """Ultralytics YOLOv8 / YOLO11 / yolov5u detection exports: (1, 4 + nc, N)."""

    name = "yolov8"
    center, rgb, scale = True, True, 1 / 255

    def decode(
        self, outputs: list[NDArray[np.float32]], input_hw: tuple[int, int], params: DecodeParams
    ) -> RawDetections:
        return decode_yolov8(outputs[0], params.conf, params.iou, params.max_det)

    def num_classes(self, output_shape: Shape, input_hw: tuple[int, int]) -> int | None:
        if len(output_shape) != 3 or output_shape[0] != 1 or output_shape[1] < 5:
            raise _bad(self.name, output_shape, "(1, 4 + classes, N)")
        return output_shape[1] - 4

    @staticmethod
    def recognises(output_shape: Shape, input_hw: tuple[int, int], meta: ModelMetadata) -> bool:
        if len(output_shape) != 3 or output_shape[0] != 1:
            return False
        if meta.class_names is not None:
            return output_shape[1] == 4 + len(meta.class_names)
        # Without names: channels first and far fewer channels than anchor points.
        return 5 <= output_shape[1] < output_shape[2]


class YoloV8End2EndBackend(YoloV8Backend):
    """Ultralytics exports with NMS inside (``nms=True``, YOLO26): (1, K, 6) x1, y1, x2, y2, score, class."""

    name = "yolov8_end2end"

    def decode(
        self, outputs: list[NDArray[np.float32]], input_hw: tuple[int, int], params: DecodeParams
    ) -> RawDetections:
        return decode_end2end(outputs[0], params.conf, params.max_det)

    def num_classes(self, output_shape: Shape, input_hw: tuple[int, int]) -> int | None:
        if len(output_shape) != 3 or output_shape[0] != 1 or output_shape[2] != 6:
            raise _bad(self.name, output_shape, "(1, K, 6)")
        return None

    @staticmethod
    def recognises(output_shape: Shape, input_hw: tuple[int, int], meta: ModelMetadata) -> bool:
        return (
            len(output_shape) == 3 and output_shape[0] == 1 and output_shape[2] == 6 and output_shape[1] != 6
        )


class YoloXBackend(Backend):
    """YOLOX exported without decode: (1, grid points of strides 8/16/32, 5 + nc); BGR 0–255, top-left."""

    name = "yolox"
    center, rgb, scale = False, False, 1.0

    def decode(
        self, outputs: list[NDArray[np.float32]], input_hw: tuple[int, int], params: DecodeParams
    ) -> RawDetections:
        return decode_yolox(outputs[0], input_hw, params.conf, params.iou, params.max_det)

    def num_classes(self, output_shape: Shape, input_hw: tuple[int, int]) -> int | None:
        rows = yolox_grid(input_hw).shape[0]
        if len(output_shape) != 3 or output_shape[0] != 1 or output_shape[1] != rows or output_shape[2] < 6:
            raise _bad(self.name, output_shape, f"(1, {rows}, 5 + classes) for input {input_hw}")
        return output_shape[2] - 5

    @staticmethod
    def recognises(output_shape: Shape, input_hw: tuple[int, int], meta: ModelMetadata) -> bool:
        rows = yolox_grid(input_hw).shape[0]
        return (
            len(output_shape) == 3
            and output_shape[0] == 1
            and output_shape[1] == rows
            and output_shape[2] >= 6
        )


#: Every backend by the name used in ``DetectorConfig.decoder``.
BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (YoloV8Backend, YoloV8End2EndBackend, YoloXBackend)}


def choose_backend(
    requested: str, output_shape: Shape, input_hw: tuple[int, int], meta: ModelMetadata
) -> Backend:
    """The backend ``requested`` by name, or for ``auto`` the one that recognises the model."""
    if requested != "auto":
        if requested not in BACKENDS:
            raise ModelFormatError(f"unknown decoder {requested!r}; known: auto, {', '.join(BACKENDS)}")
        return BACKENDS[requested]()
    if meta.nms_included and YoloV8End2EndBackend.recognises(output_shape, input_hw, meta):
        return YoloV8End2EndBackend()
    for backend in (YoloXBackend, YoloV8Backend, YoloV8End2EndBackend):
        if backend.recognises(output_shape, input_hw, meta):
            return backend()
    raise ModelFormatError(
        f"no decoder understands an output of shape {output_shape} (input {input_hw}): "
        f"expected (1, 4 + classes, N) for yolov8, (1, K, 6) for yolov8_end2end or "
        f"(1, {yolox_grid(input_hw).shape[0]}, 5 + classes) for yolox"
    )

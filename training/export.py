"""Export a trained detector to ONNX: FP32 (the reference), FP16 and static INT8.

Every file describes itself in its ``metadata_props`` (the edge reads them instead of
hard-coding anything): ultralytics' own ``names`` and ``imgsz`` keys, plus ours:

- ``streetwatch_model``: the model's name (e.g. ``streetwatch-det``)
- ``version``: the model version (ultralytics writes its package version under this
  key; we move that to ``ultralytics_version``)
- ``data_hash``: content hash of the training data (:mod:`training.data_hash`)
- ``precision``: ``fp32`` / ``fp16`` / ``int8``

INT8 note: the exported graph ends with the head's post-processing, where box
coordinates in pixels (0..imgsz) and class scores (0..1) are concatenated into one
tensor. Quantising that tensor with one scale flattens the scores to zero, so the
post-processing nodes stay in FP32 and only the convolutional body is quantised.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from streetwatch.errors import ConfigError, ModelFormatError, ModelNotFoundError
from training.train import go_offline

log = logging.getLogger(__name__)

#: ONNX opset: 17 is the newest that JetPack 5's TensorRT 8.5 parses.
OPSET = 17

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def set_metadata(model: Any, values: dict[str, str]) -> None:
    """Add or replace ``metadata_props`` entries of an ``onnx.ModelProto``."""
    existing = {p.key: p for p in model.metadata_props}
    for key, value in values.items():
        if key in existing:
            existing[key].value = value
        else:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value


def read_metadata(path: Path) -> dict[str, str]:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf's DecodeError and others on a non-ONNX file
        raise ConfigError(f"{path} is not an ONNX model ({type(exc).__name__}); export it first") from exc
    return {p.key: p.value for p in model.metadata_props}


def export_fp32(
    weights: Path,
    out: Path,
    model_name: str,
    version: str,
    data_hash: str,
    imgsz: int = 416,
    class_names: list[str] | None = None,
) -> Path:
    """Export an ultralytics ``.pt`` to a self-describing FP32 ONNX at ``out``.

    ``class_names`` (the training data's) must be the checkpoint's own: the data hash written
    into the model claims that data trained it.
    """
    import onnx

    if not weights.is_file():
        raise ModelNotFoundError(f"weights not found: {weights}")
    go_offline()
    from ultralytics import YOLO

    with tempfile.TemporaryDirectory() as tmp:
        # ultralytics writes the .onnx next to the weights: work on a copy, never beside the original.
        local = Path(tmp) / "model.pt"
        shutil.copy2(weights, local)
        try:
            yolo = YOLO(str(local))
        except Exception as exc:  # torch/pickle raise many kinds on a file that is not a checkpoint
            raise ConfigError(f"{weights} is not an ultralytics checkpoint: {exc}") from None
        own = [str(yolo.names[i]) for i in sorted(yolo.names)]
        if class_names is not None and own != list(class_names):
            raise ConfigError(
                f"{weights} has classes {own} but the data yaml names {list(class_names)}; "
                "give the yaml of the data this model was trained on"
            )
        exported = Path(yolo.export(format="onnx", imgsz=imgsz, opset=OPSET, simplify=True))
        model = onnx.load(str(exported))
    meta = {p.key: p.value for p in model.metadata_props}
    set_metadata(
        model,
        {
            "ultralytics_version": meta.get("version", ""),
            "version": version,
            "streetwatch_model": model_name,
            "data_hash": data_hash,
            "precision": "fp32",
        },
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def export_fp16(fp32: Path, out: Path) -> Path:
    """Halve the weights and activations; inputs and outputs stay float32 for the caller."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(fp32))
    half = convert_float_to_float16(model, keep_io_types=True)
    set_metadata(half, {"precision": "fp16"})
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(half, str(out))
    return out


def head_postprocess_nodes(model: Any) -> list[str]:
    """Names of the detect head's post-processing nodes (everything in the last module but its convs).

    Ultralytics names nodes ``/model.<layer>/...``; the head is the highest layer, its
    branches ``cv2`` (boxes) and ``cv3`` (classes) are ordinary convolutions that quantise
    well; the rest (DFL softmax, anchor decode, concat) must stay in FP32.
    """
    layers: dict[int, list[str]] = {}
    for node in model.graph.node:
        parts = node.name.split("/")
        if len(parts) > 2 and parts[1].startswith("model."):
            try:
                layers.setdefault(int(parts[1].split(".")[1]), []).append(node.name)
            except ValueError:
                continue
    if not layers:
        raise ModelFormatError("no '/model.N/' node names: not an ultralytics detector export")
    head = max(layers)
    keep_quantised = (f"/model.{head}/cv2", f"/model.{head}/cv3")
    return [name for name in layers[head] if not name.startswith(keep_quantised)]


def letterbox(image: np.ndarray, size: int) -> np.ndarray:
    """Ultralytics-style input: resize keeping aspect, centre on a 114 canvas, RGB, 0..1, NCHW."""
    import cv2

    h, w = image.shape[:2]
    ratio = min(size / h, size / w)
    nh, nw = round(h * ratio), round(w * ratio)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    canvas = np.full((size, size, 3), 114, dtype=np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = resized
    rgb = canvas[:, :, ::-1].transpose(2, 0, 1)
    return (rgb[None].astype(np.float32) / 255.0).copy()


def letterbox_file(path: Path, size: int) -> np.ndarray | None:
    """:func:`letterbox` of the photo at ``path``; None when OpenCV cannot read it."""
    import cv2

    image = cv2.imread(str(path))
    return None if image is None else letterbox(image, size)


def calibration_images(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """A reproducible random sample of ``count`` images under ``folder`` (recursively)."""
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise ConfigError(f"no calibration images under {folder}")
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(images), size=min(count, len(images)), replace=False)
    return [images[i] for i in sorted(picked)]


class _ImageReader:
    """onnxruntime CalibrationDataReader over real photos."""

    def __init__(self, input_name: str, images: list[Path], size: int) -> None:
        self.input_name = input_name
        self.size = size
        self._iter: Iterator[Path] = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        for path in self._iter:
            pixels = letterbox_file(path, self.size)
            if pixels is None:
                log.warning("calibration: unreadable image %s skipped", path)
                continue
            return {self.input_name: pixels}
        return None


def export_int8(
    fp32: Path,
    out: Path,
    images: list[Path],
    exclude_postprocess: bool = True,
    per_channel: bool = True,
) -> Path:
    """Static INT8 (QDQ, uint8 activations, int8 weights) calibrated on ``images``.

    Per-channel weight scales are the default: on the first model they kept mAP50 level
    with FP32 (per-tensor lost ~1 point, 4 on trucks) at about the same speed.
    """
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not images:
        raise ConfigError("INT8 calibration needs at least one image")
    model = onnx.load(str(fp32))
    meta = {p.key: p.value for p in model.metadata_props}
    size = int(model.graph.input[0].type.tensor_type.shape.dim[2].dim_value)
    exclude = head_postprocess_nodes(model) if exclude_postprocess else []
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            _ImageReader(model.graph.input[0].name, images, size),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
            nodes_to_exclude=exclude,
            calibrate_method=CalibrationMethod.MinMax,
        )
    quantised = onnx.load(str(out))
    del quantised.metadata_props[:]
    set_metadata(quantised, {**meta, "precision": "int8", "int8_calibration_images": str(len(images))})
    onnx.save(quantised, str(out))
    return out

"""``OnnxDetector``: one ONNX model behind the ``Detector`` protocol, in three overlappable stages.

``detect(image)`` is ``finish(infer(prepare(image)), prepared)``. The pipeline may
run the stages in different threads: ``prepare`` and ``finish`` are numpy/OpenCV
(mostly native code), ``infer`` is onnxruntime, which releases the GIL while it runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.config import DetectorConfig
from edge.detections import Detections
from edge.detector.backends import Backend, DecodeParams, choose_backend
from edge.detector.letterbox import LetterboxMeta, boxes_to_original
from edge.detector.metadata import ModelMetadata, from_onnx_props, from_sidecar
from edge.detector.session import open_session
from edge.interfaces import ModelInfo
from streetwatch.errors import ConfigError, ModelFormatError
from streetwatch.file_hash import sha256_file

log = logging.getLogger(__name__)

DEFAULT_INPUT_HW = (640, 640)


@dataclass(frozen=True)
class Prepared:
    """An image made ready for the model: the input tensor and how the image was placed in it."""

    tensor: NDArray[np.float32]
    letterbox: LetterboxMeta


def check_image(image: Any) -> NDArray[np.uint8]:
    """The image if it is a BGR uint8 (H, W, 3) array; else ``ValueError`` naming what it got."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ValueError(f"image must be BGR uint8 of shape (H, W, 3), got {image.dtype} {image.shape}")
    return image


class OnnxDetector:
    """Runs one ONNX detection model; boxes come back in the original image's pixels."""

    def __init__(
        self,
        session: Any,
        backend: Backend,
        info: ModelInfo,
        config: DetectorConfig,
        index: int,
    ) -> None:
        self.info = info
        self.backend = backend
        self.index = index
        self.config = config
        self._session = session
        self._input_name: str = session.get_inputs()[0].name
        self._input_dtype = np.float16 if session.get_inputs()[0].type == "tensor(float16)" else np.float32
        self._params = DecodeParams(conf=config.conf, iou=config.iou)
        self._names = np.asarray(info.class_names, dtype=np.str_)
        self._keep_ids: NDArray[np.int64] | None = None
        if config.keep_classes is not None:
            unknown = sorted(set(config.keep_classes) - set(info.class_names))
            if unknown:
                raise ConfigError(
                    f"keep_classes {unknown} are not classes of model {info.name}; it has: "
                    f"{', '.join(info.class_names[:20])}{' ...' if len(info.class_names) > 20 else ''}"
                )
            self._keep_ids = np.asarray(
                [i for i, n in enumerate(info.class_names) if n in set(config.keep_classes)], dtype=np.int64
            )

    @property
    def providers(self) -> list[str]:
        """The onnxruntime providers the session actually runs on, best first."""
        return list(self._session.get_providers())

    def prepare(self, image: NDArray[np.uint8]) -> Prepared:
        tensor, meta = self.backend.preprocess(check_image(image), self.info.input_size)
        return Prepared(tensor=tensor.astype(self._input_dtype, copy=False), letterbox=meta)

    def infer(self, prepared: Prepared) -> list[NDArray[np.float32]]:
        outputs = self._session.run(None, {self._input_name: prepared.tensor})
        return [np.asarray(o, dtype=np.float32) for o in outputs]

    def finish(self, outputs: list[NDArray[np.float32]], prepared: Prepared) -> Detections:
        raw = self.backend.decode(outputs, self.info.input_size, self._params)
        keep = raw.scores >= self.config.conf
        if self._keep_ids is not None:
            keep &= np.isin(raw.class_ids, self._keep_ids)
        class_ids = raw.class_ids[keep]
        if bool((class_ids < len(self._names)).all()):
            names = self._names[class_ids]
        else:  # an id the names do not cover (end2end model, too few names) is reported by its number
            names = np.asarray([self._class_name(i) for i in class_ids.tolist()], dtype=np.str_)
        return Detections(
            xyxy=boxes_to_original(raw.xyxy[keep], prepared.letterbox),
            confidence=raw.scores[keep],
            class_id=class_ids,
            class_name=names,
            detector_index=np.full(int(keep.sum()), self.index, dtype=np.int64),
        )

    def _class_name(self, class_id: int) -> str:
        return str(self._names[class_id]) if 0 <= class_id < len(self._names) else str(class_id)

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        prepared = self.prepare(image)
        return self.finish(self.infer(prepared), prepared)


def _input_hw(session: Any, config: DetectorConfig, meta: ModelMetadata, model: Path) -> tuple[int, int]:
    """Static input dims win; a dynamic input takes ``imgsz``, then the metadata, then 640."""
    shape = session.get_inputs()[0].shape
    if len(shape) != 4:
        raise ModelFormatError(f"{model}: expected one image input of shape (1, 3, H, W), got {shape}")
    static = tuple(d for d in shape[2:] if isinstance(d, int) and d > 0)
    if len(static) == 2:
        hw = (int(static[0]), int(static[1]))
        if config.imgsz is not None and hw != (config.imgsz, config.imgsz):
            raise ConfigError(
                f"imgsz {config.imgsz} does not fit {model}: its input is fixed at {hw[0]}×{hw[1]} "
                "(re-export with that size, export with dynamic=True, or drop imgsz)"
            )
        return hw
    if config.imgsz is not None:
        return (config.imgsz, config.imgsz)
    return meta.input_hw or DEFAULT_INPUT_HW


def load_detector(cfg: DetectorConfig, index: int = 0, threads: int | None = None) -> OnnxDetector:
    """Open ``cfg.model``, read what it says about itself, pick its decoder and warm it up.

    ``threads``: onnxruntime intra-op threads on CPU (default: the cores, up to 4).

    Raises ``ModelNotFoundError`` (no file), ``ModelFormatError`` (not ONNX, or an output
    no decoder understands) and ``ConfigError`` (settings that contradict the model).
    """
    model = Path(cfg.model)
    label = f"detector {index} ({model.name})"
    session = open_session(model, list(cfg.providers), label, threads)
    onnx_meta = from_onnx_props(dict(session.get_modelmeta().custom_metadata_map), str(model))
    meta = from_sidecar(model).merged_over(onnx_meta)
    input_hw = _input_hw(session, cfg, meta, model)
    # One real run: warms up the session and gives concrete output shapes even for dynamic exports.
    first = session.get_inputs()[0]
    dtype = np.float16 if first.type == "tensor(float16)" else np.float32
    outputs = session.run(None, {first.name: np.zeros((1, 3, *input_hw), dtype=dtype)})
    output_shape = tuple(int(d) for d in outputs[0].shape)
    requested = cfg.decoder if cfg.decoder != "auto" else (meta.decoder or "auto")
    backend = choose_backend(requested, output_shape, input_hw, meta)
    num_classes = backend.num_classes(output_shape, input_hw)
    names = tuple(cfg.class_names) if cfg.class_names is not None else meta.class_names
    if names is None:
        names = tuple(str(i) for i in range(num_classes or 0))
        log.warning("%s: the model names no classes; reporting class numbers (set class_names)", label)
    elif num_classes is not None and len(names) != num_classes:
        raise ModelFormatError(
            f"{model} outputs {num_classes} classes but {len(names)} class names were given "
            "(config class_names, sidecar or ONNX metadata)"
        )
    info = ModelInfo(
        name=cfg.name or meta.name or model.stem,
        version=cfg.version or meta.version or f"sha256:{sha256_file(model)[:12]}",
        class_names=names,
        input_size=input_hw,
    )
    log.debug(
        "%s: %s %s, decoder %s, input %s, %d classes",
        label,
        info.name,
        info.version,
        backend.name,
        input_hw,
        len(names),
    )
    return OnnxDetector(session, backend, info, cfg, index)

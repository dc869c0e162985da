"""Try a downloaded model before it touches the pipeline: load, warm up, run on recent frames, compare.

A model is refused when it does not load (not ONNX, an output no decoder understands,
class names that do not match its outputs), lacks a class the box's ``class_map`` needs
from that detector, produces NaN or infinite numbers, or — on the same recent frames —
finds things wildly different from the model it would replace (``updates.max_drift``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge.config import DetectorConfig, DeviceConfig
from edge.detections import Detections
from edge.detector import load_detector
from edge.detector.flipped import with_flip
from edge.detector.staged import StagedDetector, as_staged
from edge.detector.tiled import with_tiles
from edge.frames import Frame
from edge.geometry import iou_matrix
from edge.updates.artifact import UpdateRefused
from streetwatch.errors import ConfigError

log = logging.getLogger(__name__)

#: IoU at which an old and a new box of the same class are "the same detection".
MATCH_IOU = 0.5


@dataclass(frozen=True)
class ProbeReport:
    frames: int
    old_detections: int
    new_detections: int
    drift: float
    infer_ms: float


def probe_model(
    path: Path,
    *,
    config: DeviceConfig,
    index: int,
    name: str,
    version: str,
    old: StagedDetector,
    frames: Sequence[Frame],
    max_drift: float,
    threads: int = 1,
) -> tuple[StagedDetector, ProbeReport]:
    """Load ``path`` as detector ``index`` and check it on ``frames``; raise :class:`UpdateRefused`."""
    base = config.detectors[index]
    cfg: DetectorConfig = base.model_copy(update={"model": str(path), "name": name, "version": version})
    try:
        loaded = load_detector(cfg, index=index, threads=threads)  # loads and runs once (warm-up)
    except Exception as exc:
        raise UpdateRefused("probe", f"the model does not load: {exc}") from exc
    try:  # a tiled or mirrored detector stays so on its new model
        detector = as_staged(with_flip(with_tiles(loaded, cfg), cfg))
    except ConfigError as exc:
        raise UpdateRefused("probe", f"the model does not fit the box's config: {exc}") from exc
    missing = needed_classes(config, index, old) - set(detector.info.class_names)
    if missing:
        raise UpdateRefused(
            "probe",
            f"the model lacks the classes {sorted(missing)} that class_map needs from detector {index} "
            f"(it has: {', '.join(detector.info.class_names[:20])})",
        )
    matched = old_total = new_total = 0
    spent = 0.0
    for frame in frames:
        try:
            prepared = detector.prepare(frame.image)
            started = time.perf_counter()
            outputs = detector.infer(prepared)
            spent += time.perf_counter() - started
            for out in _arrays(outputs):
                if not np.isfinite(out).all():
                    raise ValueError(f"an output of shape {out.shape} holds NaN or infinite values")
            new = detector.finish(outputs, prepared)
        except Exception as exc:
            raise UpdateRefused("probe", f"the model fails on a recent frame: {exc}") from exc
        try:
            before = _detect(old, frame)
        except Exception as exc:  # the old model failing is no reason to refuse the new one
            log.warning("probe: the running model failed on a recent frame (%s); not compared", exc)
            continue
        matched += _matches(before, new)
        old_total += len(before)
        new_total += len(new)
    drift = 0.0 if old_total + new_total == 0 else 1.0 - 2.0 * matched / (old_total + new_total)
    report = ProbeReport(
        len(frames), old_total, new_total, round(drift, 3), 1000 * spent / max(1, len(frames))
    )
    if drift > max_drift:
        raise UpdateRefused(
            "probe",
            f"on {len(frames)} recent frames the model found {new_total} objects where the running one found "
            f"{old_total}, {drift:.0%} of them different (updates.max_drift is {max_drift:.0%})",
        )
    return detector, report


def needed_classes(config: DeviceConfig, index: int, old: StagedDetector) -> set[str]:
    """Classes ``class_map`` (and fusion) read from detector ``index`` that the running model has."""
    mapped = {m.detector_class for m in config.class_map if m.detector in (None, index)}
    return mapped & set(old.info.class_names)


def _arrays(outputs: object) -> list[NDArray[np.float32]]:
    """The model's output arrays, also from a tiled detector (one list of them per tile)."""
    if isinstance(outputs, np.ndarray):
        return [outputs]
    if isinstance(outputs, list | tuple):
        return [a for o in outputs for a in _arrays(o)]
    return []


def _detect(detector: StagedDetector, frame: Frame) -> Detections:
    prepared = detector.prepare(frame.image)
    return detector.finish(detector.infer(prepared), prepared)


def _matches(old: Detections, new: Detections) -> int:
    """Greedy one-to-one matches of same-class boxes with IoU >= MATCH_IOU."""
    if not len(old) or not len(new):
        return 0
    iou = iou_matrix(old.xyxy, new.xyxy)
    iou[old.class_name[:, None] != new.class_name[None, :]] = 0.0
    count = 0
    while True:
        i, j = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if iou[i, j] < MATCH_IOU:
            return count
        count += 1
        iou[i, :] = 0.0
        iou[:, j] = 0.0

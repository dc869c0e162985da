"""Detectors seen as three stages, so the pipeline can overlap them across threads.

``OnnxDetector`` has ``prepare`` / ``infer`` / ``finish``; any other
:class:`edge.interfaces.Detector` (a plugin with only ``detect``) is wrapped so
that all of its work happens in the inference stage.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from edge.detections import Detections
from edge.interfaces import Detector, ModelInfo


@runtime_checkable
class StagedDetector(Protocol):
    info: ModelInfo

    def prepare(self, image: NDArray[np.uint8]) -> Any: ...

    def infer(self, prepared: Any) -> Any: ...

    def finish(self, outputs: Any, prepared: Any) -> Detections: ...


class _DetectOnly:
    """A ``detect``-only detector as stages: prepare passes the image on, infer detects, finish returns."""

    def __init__(self, detector: Detector) -> None:
        self.info = detector.info
        self._detector = detector

    def prepare(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        return image

    def infer(self, prepared: NDArray[np.uint8]) -> Detections:
        return self._detector.detect(prepared)

    def finish(self, outputs: Detections, prepared: object) -> Detections:
        return outputs


def as_staged(detector: Detector | StagedDetector) -> StagedDetector:
    if isinstance(detector, StagedDetector):
        return detector
    return _DetectOnly(detector)

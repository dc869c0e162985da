"""The seams of the edge pipeline, as small protocols.

Each stage is one verb. Implementations live in their own modules/folders
(``edge/sources/``, ``edge/detector/``, ``edge/tracker/``, ``edge/location/``,
``edge/rules/``, ``edge/sinks/``); the pipeline only knows these protocols, so
a new backend, source or tracker is a plugin, not an edit of the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from edge.detections import Detections
from edge.frames import Frame
from streetwatch.events import EvidenceRef, ModelRef, Position, ViolationEvent


@runtime_checkable
class FrameSource(Protocol):
    """Yields frames until the source ends; unreadable frames are skipped with a warning."""

    name: str

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


@runtime_checkable
class Locator(Protocol):
    """Answers where the camera was at a given (frame) time."""

    def position_at(self, when: datetime) -> Position | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ModelInfo:
    """What a model says about itself (ONNX metadata, or the config for models without it)."""

    name: str
    version: str
    class_names: tuple[str, ...]
    input_size: tuple[int, int]  # (height, width)

    @property
    def ref(self) -> ModelRef:
        return ModelRef(name=self.name, version=self.version)


@runtime_checkable
class Detector(Protocol):
    """Runs one model on one BGR image; boxes come back in the image's pixels."""

    info: ModelInfo

    def detect(self, image: NDArray[np.uint8]) -> Detections: ...


@runtime_checkable
class Tracker(Protocol):
    """Assigns stable ``tracker_id`` values to detections across frames."""

    def update(self, detections: Detections, timestamp: datetime) -> Detections: ...

    def reset(self) -> None: ...


@dataclass(frozen=True)
class Evidence:
    """Evidence images for one event as JPEG bytes: the annotated full frame, the crop and,
    when the box keeps it, the same frame with nothing drawn on it (training data)."""

    frame_jpeg: bytes
    crop_jpeg: bytes
    ref: EvidenceRef
    clean_jpeg: bytes | None = None


@runtime_checkable
class EventSink(Protocol):
    """Takes events out of the pipeline (JSON-lines file, MQTT outbox...).

    ``emit`` must return quickly: it is called from the detection loop. A sink
    that delivers over a network persists first and sends in the background.
    """

    def emit(self, event: ViolationEvent, evidence: Evidence | None) -> None: ...

    def close(self) -> None: ...

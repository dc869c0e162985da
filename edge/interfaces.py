"""The seams of the edge pipeline, as small protocols.

Each stage is one verb. Implementations live in their own modules/folders
(``edge/sources/``, ``edge/detector/``, ``edge/tracker/``, ``edge/location/``,
``edge/rules/``, ``edge/sinks/``, ``edge/mqtt/``); the pipeline only knows these protocols, so
a new backend, source or tracker is a plugin, not an edit of the pipeline.

Events leave through an :class:`EventSink`. A box that talks to a server has a
:class:`DeviceLink` besides (status, telemetry, commands), and its sink keeps what the
server has not acknowledged (:class:`QueuedSink`); the pipeline and the command line
ask these typed faces, never a sink's attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from edge.detections import Detections
from edge.frames import Frame
from streetwatch.events import ConfigRef, EvidenceRef, ModelRef, Position, ViolationEvent

if TYPE_CHECKING:
    from edge.mqtt.commands import CommandDispatcher, ReplyState
    from streetwatch.messages import TruckLoadCounts


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
    #: Width and height of the original frame the evidence was cut from (``ref.box`` is in its pixels).
    frame_size: tuple[int, int] | None = None

    def ref_for(self, frame_size: tuple[int, int]) -> EvidenceRef:
        """The reference an event of a frame of ``frame_size`` carries: without the box when the
        evidence comes from a frame of another size (a replay of photos of several sizes), whose
        pixels the event's frame size would misdescribe."""
        if self.ref.box is None or self.frame_size == frame_size:
            return self.ref
        return self.ref.model_copy(update={"box": None})


@runtime_checkable
class EventSink(Protocol):
    """Takes events out of the pipeline (JSON-lines file, MQTT outbox...).

    ``emit`` must return quickly: it is called from the detection loop. A sink
    that delivers over a network persists first and sends in the background.
    """

    def emit(self, event: ViolationEvent, evidence: Evidence | None) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Pending:
    """What a sink still holds because the receiver has not acknowledged it."""

    events: int
    evidence: int
    where: str  # the file it waits in


@runtime_checkable
class QueuedSink(EventSink, Protocol):
    """An :class:`EventSink` that keeps events until the receiver says it stored them (the MQTT outbox).

    ``pending`` answers while it is open and, after ``close``, what it kept for the next start.
    """

    def pending(self) -> Pending: ...


#: What a starting box does with a model (``StartupProgress.step`` in telemetry).
StartupStep = Literal["loading", "building_tensorrt_engine"]


class StartupReport(Protocol):
    """Hears what a starting box is doing before its first frame (:mod:`edge.startup`)."""

    def starting(self, model: str, step: StartupStep, number: int = 1, total: int = 1) -> None: ...

    def running(self) -> None: ...


class Telemetry(Protocol):
    """What the pipeline adds to the box's telemetry: frames, positions, and the truck load stage's counts."""

    def note_frame(self, count: int = 1) -> None: ...

    def note_position(self, position: Position, at: datetime) -> None: ...

    def count_trucks_with(self, counts: Callable[[], TruckLoadCounts]) -> None: ...


class DeviceLink(StartupReport, Protocol):
    """The box's line to the server besides its events (MQTT: :class:`edge.mqtt.MqttLink`).

    The retained status names the models the box runs and whether it is starting or running;
    telemetry reports frames, coverage and health; commands arrive and are answered here.
    """

    @property
    def telemetry(self) -> Telemetry: ...

    @property
    def commands(self) -> CommandDispatcher: ...

    def set_models(self, models: Sequence[ModelRef]) -> None: ...

    def set_config(self, config: ConfigRef | None) -> None: ...

    def reply(
        self,
        command_id: str,
        type: str,
        state: ReplyState,
        *,
        step: str | None = None,
        progress: float | None = None,
        reason: str | None = None,
    ) -> None: ...

    def release_commands(self) -> None: ...

    def close(self) -> None: ...

"""Small real-behaving stand-ins for pipeline parts: a frame list, a scripted detector, a fixed locator."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge.config import DeviceConfig
from edge.detections import Detections
from edge.frames import Frame
from edge.interfaces import ModelInfo
from streetwatch.errors import SourceError
from streetwatch.events import Position

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)
TRUCK_BOX = (100.0, 120.0, 300.0, 260.0)


class ListSource:
    """Frames at 1 s intervals; optionally fails for good after ``fail_after`` frames, or never ends."""

    def __init__(self, count: int | None, fail_after: int | None = None, delay_s: float = 0.0) -> None:
        self.name = "fake"
        self.count = count
        self.fail_after = fail_after
        self.delay_s = delay_s
        self.closed = False
        self.image: NDArray[np.uint8] = np.full((240, 320, 3), 90, dtype=np.uint8)

    def __iter__(self) -> Iterator[Frame]:
        i = 0
        while self.count is None or i < self.count:
            if self.fail_after is not None and i >= self.fail_after:
                raise SourceError("fake camera unplugged")
            if self.delay_s:
                time.sleep(self.delay_s)
            when = T0 + timedelta(seconds=i)
            image = self.image.copy()
            image[0, 0, 0] = i % 256  # the frame's number, readable by a detector in any thread
            yield Frame(image=image, timestamp=when, index=i, source=self.name)
            i += 1

    def close(self) -> None:
        self.closed = True


class ScriptedDetector:
    """A detect-only detector: a truck on every frame; raises on the frame numbers in ``fail_on``
    (read from the pixel ``ListSource`` marks, so it holds whichever worker thread runs it)."""

    def __init__(self, fail_on: Sequence[int] = ()) -> None:
        self.info = ModelInfo(name="fake-det", version="0", class_names=("car", "truck"), input_size=(64, 64))
        self.fail_on = set(fail_on)

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        if int(image[0, 0, 0]) in self.fail_on:
            raise RuntimeError("model exploded")
        return Detections(
            xyxy=np.array([TRUCK_BOX], dtype=np.float32),
            confidence=np.array([0.9], dtype=np.float32),
            class_id=np.array([1]),
            class_name=np.array(["truck"]),
        )


class StagedDetector(ScriptedDetector):
    """The three-stage form, recording which thread ran each stage."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[str, set[str]] = {"prepare": set(), "infer": set(), "finish": set()}

    def _note(self, stage: str) -> None:
        self.threads[stage].add(threading.current_thread().name)

    def prepare(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        self._note("prepare")
        return image

    def infer(self, prepared: NDArray[np.uint8]) -> list[NDArray[np.float32]]:
        self._note("infer")
        return [np.zeros(1, dtype=np.float32)]

    def finish(self, outputs: list[NDArray[np.float32]], prepared: object) -> Detections:
        self._note("finish")
        return self.detect(np.zeros((1, 1, 3), dtype=np.uint8))


class FixedLocator:
    def __init__(self, broken: bool = False) -> None:
        self.broken = broken
        self.closed = False

    def position_at(self, when: datetime) -> Position | None:
        if self.broken:
            raise OSError("GPS device gone")
        return Position(lat=21.0, lon=105.8, accuracy_m=3.0, source="fixed")

    def close(self) -> None:
        self.closed = True


def device_config(tmp_path: Path, **rule: object) -> DeviceConfig:
    rules = {"confirm_frames": 2, "confirm_window": 3, "end_after_s": 3, **rule}
    return DeviceConfig.model_validate(
        {
            "device_id": "box-1",
            "source": {"kind": "images", "uri": str(tmp_path)},
            "detectors": [{"model": str(tmp_path / "unused.onnx")}],
            "tracker": {"new_track_thresh": 0.5},
            "class_map": [{"detector_class": "truck", "violation_type": "unsealed_truck", "candidate": True}],
            "rules": {"unsealed_truck": rules},
            "evidence": {"directory": str(tmp_path / "evidence")},
            "sink": {"kind": "jsonl", "path": str(tmp_path / "events.jsonl")},
        }
    )


class SlowDetector(ScriptedDetector):
    """Inference slower than the camera: a live pipeline must drop frames rather than fall behind."""

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        time.sleep(0.03)
        return super().detect(image)


class BadPrepareDetector(StagedDetector):
    """Fails to prepare its second frame (a frame the model input cannot be made from)."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared = 0

    def prepare(self, image: NDArray[np.uint8]) -> NDArray[np.uint8]:
        self.prepared += 1
        if self.prepared == 2:
            raise ValueError("image has no pixels")
        return super().prepare(image)

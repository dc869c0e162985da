"""EdgePipeline with fake source/detector/locator, the real tracker, rules, evidence and JSON-lines sink."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from edge.config import ClassMapping, SourceConfig
from edge.detections import Detections
from edge.detector.session import cpu_threads
from edge.evidence import EvidenceRecorder
from edge.interfaces import ModelInfo
from edge.pipeline import EdgePipeline, from_config, inference_plan
from edge.sinks import JsonlSink
from streetwatch.errors import SourceError
from streetwatch.events import ViolationEvent, ViolationType
from tests.edge.pipeline_fakes import (
    TRUCK_BOX,
    BadPrepareDetector,
    FixedLocator,
    ListSource,
    ScriptedDetector,
    SlowDetector,
    StagedDetector,
    device_config,
)


def read_events(path: Path) -> list[ViolationEvent]:
    return [ViolationEvent.from_json(line) for line in path.read_bytes().splitlines()]


def make(tmp_path: Path, source: ListSource, detector: object = None, **kwargs: object) -> EdgePipeline:
    config = device_config(tmp_path)
    return from_config(
        config,
        detectors=[detector or ScriptedDetector()],  # type: ignore[list-item]
        sink=JsonlSink(config.sink.path),  # type: ignore[union-attr]
        locator=kwargs.pop("locator", FixedLocator()),  # type: ignore[arg-type]
        source=source,
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_truck_seen_for_a_while_becomes_new_then_end_with_evidence(tmp_path: Path) -> None:
    source = ListSource(count=8)
    pipeline = make(tmp_path, source)
    stats = pipeline.run()
    events = read_events(tmp_path / "events.jsonl")
    assert [e.lifecycle.value for e in events] == ["new", "end"]
    new, end = events
    assert new.track_id == end.track_id
    assert new.violation_type.value == "unsealed_truck" and new.candidate
    assert new.position is not None and new.position.source == "fixed"
    assert new.model.name == "fake-det"
    assert new.evidence is not None
    frame_file = pipeline.evidence.store.path_for(new.evidence.frame_sha256)
    assert frame_file.stat().st_size == new.evidence.frame_bytes
    assert stats.frames == 8 and stats.events == 2 and stats.errors == 0
    assert source.closed
    assert pipeline.evidence.kept == 0  # the ended track's frame was let go


def test_staged_detectors_run_their_stages_in_separate_threads(tmp_path: Path) -> None:
    detector = StagedDetector()
    make(tmp_path, ListSource(count=5), detector).run()
    assert detector.threads["prepare"] == {"frame-reader"}
    assert detector.threads["finish"] == {"events"}
    assert detector.threads["infer"] and detector.threads["infer"] <= {
        "MainThread",
        "infer-1",
        "infer-2",
        "infer-3",
    }
    assert len(read_events(tmp_path / "events.jsonl")) == 2


class JitteryDetector(StagedDetector):
    """Inference that takes a different time on every frame, so parallel workers finish out of order."""

    def __init__(self) -> None:
        super().__init__()
        self.finished_frames: list[int] = []

    def infer(self, prepared: NDArray[np.uint8]) -> list[NDArray[np.float32]]:
        number = int(prepared[0, 0, 0])
        time.sleep(0.002 * ((number * 7) % 5))
        return [np.full(1, number, dtype=np.float32), *super().infer(prepared)]

    def finish(self, outputs: list[NDArray[np.float32]], prepared: object) -> Detections:
        self.finished_frames.append(int(outputs[0][0]))
        return super().finish(outputs, prepared)


def test_parallel_inference_hands_frames_on_in_order(tmp_path: Path) -> None:
    detector = JitteryDetector()
    config = device_config(tmp_path).model_copy(update={"inference_workers": 3})
    pipeline = from_config(
        config, detectors=[detector], sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(), source=ListSource(count=40),
    )  # fmt: skip
    stats = pipeline.run()
    assert pipeline.inference_workers == 3
    assert len(detector.threads["infer"]) > 1  # the frames really were spread over workers
    assert detector.finished_frames == list(range(40))  # ...and still reached tracking in order
    assert stats.frames == 40


def test_max_frames_is_exact_with_several_workers(tmp_path: Path) -> None:
    detector = JitteryDetector()
    config = device_config(tmp_path).model_copy(update={"inference_workers": 3})
    pipeline = from_config(
        config, detectors=[detector], sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(), source=ListSource(count=None),
    )  # fmt: skip
    assert pipeline.run(max_frames=7).frames == 7
    assert detector.finished_frames == list(range(7))


def test_a_failed_frame_does_not_hold_up_the_frames_after_it(tmp_path: Path) -> None:
    config = device_config(tmp_path).model_copy(update={"inference_workers": 2})
    pipeline = from_config(
        config, detectors=[ScriptedDetector(fail_on=[0, 3])], sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(), source=ListSource(count=12),
    )  # fmt: skip
    stats = pipeline.run()
    assert stats.errors == 2 and stats.frames == 10


def test_the_cores_are_split_between_frames_unless_configured() -> None:
    cores = cpu_threads()
    assert inference_plan(None) == (cores, 1)
    assert inference_plan(1) == (1, cores)
    assert inference_plan(cores * 2) == (cores * 2, 1)


def test_a_bad_frame_is_skipped_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = make(tmp_path, ListSource(count=10), ScriptedDetector(fail_on=[2])).run()
    assert stats.errors == 1 and stats.frames == 9
    assert "frame 2 of fake skipped: inference failed: model exploded" in caplog.text
    assert [e.lifecycle.value for e in read_events(tmp_path / "events.jsonl")] == ["new", "end"]


def test_a_broken_locator_gives_events_without_position(tmp_path: Path) -> None:
    make(tmp_path, ListSource(count=4), locator=FixedLocator(broken=True)).run()
    events = read_events(tmp_path / "events.jsonl")
    assert events and all(e.position is None for e in events)


def test_max_frames_stops_early_and_ends_open_violations(tmp_path: Path) -> None:
    stats = make(tmp_path, ListSource(count=None)).run(max_frames=4)
    assert stats.frames == 4
    assert [e.lifecycle.value for e in read_events(tmp_path / "events.jsonl")] == ["new", "end"]


def test_source_failure_still_shuts_down_cleanly(tmp_path: Path) -> None:
    source = ListSource(count=None, fail_after=5)
    pipeline = make(tmp_path, source)
    with pytest.raises(SourceError, match="unplugged"):
        pipeline.run()
    assert source.closed
    assert [e.lifecycle.value for e in read_events(tmp_path / "events.jsonl")] == ["new", "end"]


def test_sigterm_ends_the_run_cleanly(tmp_path: Path) -> None:
    source = ListSource(count=None, delay_s=0.02)
    pipeline = make(tmp_path, source)
    timer = threading.Timer(1.0, os.kill, args=(os.getpid(), signal.SIGTERM))
    previous = signal.getsignal(signal.SIGTERM)
    timer.start()
    try:
        stats = pipeline.run(handle_signals=True)
    finally:
        timer.cancel()
    assert signal.getsignal(signal.SIGTERM) is previous
    assert stats.frames >= 3
    assert [e.lifecycle.value for e in read_events(tmp_path / "events.jsonl")] == ["new", "end"]
    assert source.closed


def test_full_disk_sends_events_without_evidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("edge.evidence.store.open", full, raising=False)
    config = device_config(tmp_path)
    pipeline = make(tmp_path, ListSource(count=6), evidence=EvidenceRecorder(config.evidence))
    stats = pipeline.run()
    events = read_events(tmp_path / "events.jsonl")
    assert [e.lifecycle.value for e in events] == ["new", "end"]
    assert all(e.evidence is None for e in events)
    assert stats.evidence_failures == 2


def test_live_sources_drop_frames_when_inference_is_behind(tmp_path: Path) -> None:
    config = device_config(tmp_path).model_copy(
        update={"source": SourceConfig(kind="stream", uri="rtsp://camera.invalid/live")}
    )
    pipeline = from_config(
        config, detectors=[SlowDetector()], sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(), source=ListSource(count=60, delay_s=0.002),
    )  # fmt: skip
    stats = pipeline.run()
    assert stats.dropped > 0
    assert stats.frames + stats.dropped == 60


def test_a_frame_that_cannot_be_prepared_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stats = make(tmp_path, ListSource(count=6), BadPrepareDetector()).run()
    assert stats.errors == 1 and stats.frames == 5
    assert "frame 1 of fake skipped: cannot prepare it: image has no pixels" in caplog.text


def test_two_detectors_are_merged_and_keep_their_own_models(tmp_path: Path) -> None:
    proxy, dedicated = ScriptedDetector(), ScriptedDetector()
    dedicated.info = ModelInfo("streetwatch-det", "3", class_names=("truck",), input_size=(64, 64))
    config = device_config(tmp_path).model_copy(
        update={
            "class_map": [
                ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck,
                             candidate=True, detector=0),
                ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck,
                             candidate=False, detector=1),
            ]
        }
    )  # fmt: skip
    pipeline = from_config(
        config, detectors=[proxy, dedicated], sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(), source=ListSource(count=6),
    )  # fmt: skip
    pipeline.run()
    new = [e for e in read_events(tmp_path / "events.jsonl") if e.lifecycle.value == "new"]
    found = sorted((e.model.name, e.candidate) for e in new)
    assert found == [("fake-det", True), ("streetwatch-det", False)]


class _CarDetector(ScriptedDetector):
    """Sees a car, surer than the proxy's truck, where the proxy sees its truck."""

    def __init__(self) -> None:
        super().__init__()
        self.info = ModelInfo("streetwatch-det", "3", class_names=("car", "truck"), input_size=(64, 64))

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        found = super().detect(image)
        return Detections(
            xyxy=found.xyxy + 3, confidence=np.array([0.95], dtype=np.float32),
            class_id=np.array([0]), class_name=np.array(["car"]),
        )  # fmt: skip


@pytest.mark.parametrize("fused", [False, True])
def test_fusion_runs_in_the_pipeline_and_a_surer_car_outvotes_the_truck(tmp_path: Path, fused: bool) -> None:
    from edge.config import FusionConfig

    fusion = FusionConfig(
        detectors=[0, 1], report_as=1, classes={"truck": ["truck"], "car": ["car"]}, score="max"
    )
    config = device_config(tmp_path).model_copy(update={"fusion": fusion if fused else None})
    pipeline = from_config(
        config, detectors=[ScriptedDetector(), _CarDetector()], sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(), source=ListSource(count=6),
    )  # fmt: skip
    pipeline.run()
    trucks = [
        e for e in read_events(tmp_path / "events.jsonl") if e.violation_type is ViolationType.unsealed_truck
    ]
    assert (trucks == []) is fused


class DriftingTruck(ScriptedDetector):
    """The truck a patrol van passes: 20 px further right each frame, seen best on frame 1."""

    SCORES = (0.6, 0.95, 0.7, 0.7, 0.7, 0.7)

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        i = int(image[0, 0, 0])
        x1, y1, x2, y2 = TRUCK_BOX
        return Detections(
            xyxy=np.array([(x1 + 20 * i, y1, x2 + 20 * i, y2)], dtype=np.float32),
            confidence=np.array([self.SCORES[min(i, len(self.SCORES) - 1)]], dtype=np.float32),
            class_id=np.array([1]),
            class_name=np.array(["truck"]),
        )


def test_an_event_names_where_its_moving_object_is_in_the_evidence_frame(tmp_path: Path) -> None:
    pipeline = make(tmp_path, ListSource(count=5), DriftingTruck())
    pipeline.run()
    new = read_events(tmp_path / "events.jsonl")[0]
    assert new.lifecycle.value == "new" and new.evidence is not None
    x1, y1, x2, y2 = TRUCK_BOX
    # The evidence is the best-scoring frame (frame 1); the event's own box is the confirming frame's.
    assert new.evidence.box == (x1 + 20, y1, x2 + 20, min(y2, 240))  # clipped to the 320x240 frame
    assert new.box != new.evidence.box

"""The pipeline's reader thread: decode frames and prepare model inputs ahead of inference."""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from edge.detector.staged import StagedDetector
from edge.frames import Frame
from edge.interfaces import FrameSource
from edge.pipeline.stats import PipelineStats

log = logging.getLogger(__name__)

_POLL_S = 0.2  # how often a blocked thread looks at the stop flag


def lower_thread_priority(nice: int) -> None:
    """Make the calling thread yield the CPU to inference (Linux: threads have their own nice value).

    Decoding and post-processing fill the gaps onnxruntime leaves; on a box with
    few cores they must not slow the inference that bounds the frame rate. The
    bounded queues keep them from falling behind for long: a starved stage
    blocks its neighbour, which frees the CPU again.
    """
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), min(19, current + nice))
    except OSError as exc:  # not allowed here (some containers): run at normal priority
        log.debug("cannot lower the priority of thread %s: %s", threading.current_thread().name, exc)


@dataclass
class ReadFrame:
    frame: Frame
    prepared: list[Any]  # one per detector


@dataclass
class EndOfSource:
    error: BaseException | None = None  # why the source stopped, when it failed for good


@dataclass
class FrameReader:
    """Iterates ``source`` in its own thread and puts ``ReadFrame`` items into ``out``.

    Replays block when the queue is full (no frame of a recording is skipped);
    live sources drop the oldest queued frame instead, so inference always
    works on the freshest picture and latency stays bounded.
    """

    source: FrameSource
    detectors: Sequence[StagedDetector]
    stats: PipelineStats
    stop: threading.Event
    live: bool
    nice: int = 0
    out: queue.Queue[ReadFrame | EndOfSource] = field(default_factory=lambda: queue.Queue(maxsize=4))
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="frame-reader", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        lower_thread_priority(self.nice)
        error: BaseException | None = None
        try:
            frames = iter(self.source)
            while not self.stop.is_set():
                started = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    break
                self.stats.add_time("decode", time.perf_counter() - started)
                item = self._prepare(frame)
                if item is not None:
                    self._put(item)
        except Exception as exc:  # the source failed for good: the pipeline ends and reports it
            error = exc
        self._put_end(EndOfSource(error))

    def _prepare(self, frame: Frame) -> ReadFrame | None:
        try:
            with self.stats.timed("prepare"):
                return ReadFrame(frame, [d.prepare(frame.image) for d in self.detectors])
        except Exception as exc:
            self.stats.count("errors")
            log.warning("frame %d of %s skipped: cannot prepare it: %s", frame.index, frame.source, exc)
            return None

    def _put(self, item: ReadFrame) -> None:
        if self.live:
            while True:
                try:
                    self.out.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self.out.get_nowait()
                        self.stats.count("dropped")
                    except queue.Empty:
                        pass
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def _put_end(self, end: EndOfSource) -> None:
        # The end marker must arrive even when the queue is full and the consumer is slow.
        while True:
            try:
                self.out.put(end, timeout=_POLL_S)
                return
            except queue.Full:
                if self.stop.is_set():
                    with contextlib.suppress(queue.Empty):
                        self.out.get_nowait()

"""The pipeline's inference stage: several frames in flight at once, results handed on in order.

Why several frames rather than several threads per frame: a nano model is made of
many small operators, and splitting each across cores costs a synchronisation per
operator. On a 2-core CPU, one onnxruntime session with one intra-op thread per
caller and two callers running different frames gave 64 fps where one caller with
two intra-op threads gave 52 on a quiet machine, and 60 vs 37 with other work
running (bench/edge.py prints both ceilings). onnxruntime
sessions may be run from several threads at once, so the workers share one session
per model and the memory cost is a second set of activations, not a second model.

Frames are numbered when a worker takes them (not when the reader queues them: a
live source drops queued frames, and a number given to a dropped frame would never
come back). :class:`InOrder` then releases results in that order, so the tracker
sees frames in time order however the workers finish.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from edge.detector.staged import StagedDetector
from edge.frames import Frame
from edge.pipeline.reader import EndOfSource, FrameReader
from edge.pipeline.stats import PipelineStats

log = logging.getLogger(__name__)

_POLL_S = 0.2  # how often a blocked worker looks at the stop flag
T = TypeVar("T")


@dataclass
class Inferred:
    frame: Frame
    prepared: list[Any]
    outputs: list[Any]


#: What the workers hand to the events thread: (frame number, result), where a result of
#: ``None`` is a frame lost to an inference error (its number must still be passed).
Numbered = tuple[int, Inferred | None]


class InOrder(Generic[T]):
    """Releases numbered items in number order, holding the ones that arrive early.

    >>> order: InOrder[str] = InOrder()
    >>> order.add(1, "b"), order.add(2, None), order.add(0, "a"), order.add(3, "d")
    ([], [], ['a', 'b'], ['d'])
    """

    def __init__(self, first: int = 0) -> None:
        self._next = first
        self._held: dict[int, T | None] = {}

    def add(self, number: int, item: T | None) -> list[T]:
        """Take item ``number`` (``None``: it was lost) and return every item now due, in order."""
        self._held[number] = item
        due: list[T] = []
        while self._next in self._held:
            got = self._held.pop(self._next)
            self._next += 1
            if got is not None:
                due.append(got)
        return due

    @property
    def waiting(self) -> int:
        """Items held back until an earlier one arrives."""
        return len(self._held)


class InferenceWorkers:
    """Takes prepared frames from the reader, runs every detector on them, numbers the results.

    ``run_worker`` is the body of each worker thread (the pipeline's main thread is one
    of them). Workers stop when the source ends, ``max_frames`` have been taken, or
    ``stop`` is set; ``source_error`` then says whether the source failed for good.
    """

    def __init__(
        self,
        reader: FrameReader,
        detectors: Sequence[StagedDetector],
        stats: PipelineStats,
        stop: threading.Event,
        out: queue.Queue[Numbered | None],
        on_failure: Callable[[Frame, str, Exception], None],
        max_frames: int | None = None,
    ) -> None:
        self._reader = reader
        self._detectors = detectors
        self._stats = stats
        self._stop = stop
        self._out = out
        self._on_failure = on_failure
        self._max_frames = max_frames
        self._take_lock = threading.Lock()  # taking a frame and numbering it is one step
        self._taken = 0
        self._finished = threading.Event()  # the source ended or the frame budget is used up
        self.source_error: BaseException | None = None

    def run_worker(self, on_each: Callable[[], None] | None = None) -> None:
        while not self._stop.is_set() and not self._finished.is_set():
            taken = self._take()
            if taken is None:
                continue
            number, item = taken
            result: Inferred | None = None
            try:
                with self._stats.timed("infer"):
                    outputs = [d.infer(p) for d, p in zip(self._detectors, item.prepared, strict=True)]
                result = Inferred(item.frame, item.prepared, outputs)
            except Exception as exc:
                self._on_failure(item.frame, "inference", exc)
            finally:
                self._out.put((number, result))  # always: the events thread waits for every number
            if on_each is not None:
                on_each()

    def _take(self) -> tuple[int, Any] | None:
        """The next frame and its number; ``None`` when there is none yet or no more will come."""
        waited = time.perf_counter()
        with self._take_lock:
            if self._finished.is_set():
                return None
            if self._max_frames is not None and self._taken >= self._max_frames:
                self._finished.set()
                return None
            try:
                item = self._reader.out.get(timeout=_POLL_S)
            except queue.Empty:
                self._stats.add_time("starved", time.perf_counter() - waited, count=False)
                return None
            if isinstance(item, EndOfSource):
                self.source_error = item.error
                self._finished.set()
                return None
            number = self._taken
            self._taken += 1
        self._stats.add_time("starved", time.perf_counter() - waited)
        return number, item

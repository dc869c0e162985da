"""A detector slot whose model can be replaced while the pipeline runs, one frame boundary at a time.

The pipeline's stages run in different threads and several frames are in flight at once
(prepared by the reader, inferred by a worker, finished by the events thread). Each frame
is therefore tagged, when it is prepared, with the *generation* of the model that prepared
it, and is inferred and finished by that same model: frames before the swap finish on the
old model, frames after it run on the new one, and no frame mixes the two (their input
sizes may differ). The pipeline never pauses.

The slot also keeps what a probation needs: per generation, frames finished, the first
failure, and when the last frame finished or an inference started that has not returned.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.detections import Detections
from edge.detector.staged import StagedDetector
from edge.interfaces import ModelInfo

#: Generations kept for frames still in flight (the reader prepares a few frames ahead).
KEEP_GENERATIONS = 3


@dataclass(frozen=True)
class _Tagged:
    generation: int
    value: Any
    image: NDArray[np.uint8] | None = None  # kept to prepare the frame again after a rollback
    prepared: Any = None  # outputs only: the input they were computed from, when it was prepared again


@dataclass
class GenerationHealth:
    """How the model of one generation has done since it was swapped in."""

    since: float = field(default_factory=time.monotonic)
    frames: int = 0
    failure: str | None = None
    last_finished: float = field(default_factory=time.monotonic)
    running: dict[int, float] = field(default_factory=dict)  # inference calls in progress: id -> start
    infer_s: float = 0.0  # time spent in finished inference calls
    inferred: int = 0

    @property
    def mean_infer_s(self) -> float | None:
        return self.infer_s / self.inferred if self.inferred else None

    def snapshot(self) -> GenerationHealth:
        """A copy for another thread to read (the caller holds the lock that guards this one)."""
        return replace(self, running=dict(self.running))


class SwappableDetector:
    """A :class:`StagedDetector` whose model :meth:`swap` replaces between frames."""

    def __init__(self, detector: StagedDetector) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._models: dict[int, StagedDetector] = {0: detector}
        self._health: dict[int, GenerationHealth] = {0: GenerationHealth()}
        self._calls = 0
        self._revoked: set[int] = set()

    # -- the pipeline's stages -----------------------------------------------------------------

    @property
    def info(self) -> ModelInfo:
        return self.current.info

    @property
    def current(self) -> StagedDetector:
        with self._lock:
            return self._models[self._generation]

    @property
    def providers(self) -> list[str]:
        return list(getattr(self.current, "providers", ["CPUExecutionProvider"]))

    def prepare(self, image: NDArray[np.uint8]) -> _Tagged:
        with self._lock:
            generation = self._generation
            model = self._models[generation]
        return _Tagged(generation, model.prepare(image), image)

    def infer(self, prepared: _Tagged) -> _Tagged:
        generation = prepared.generation
        again = None
        with self._lock:
            revoked = generation in self._revoked and prepared.image is not None
        if revoked:
            # Prepared for a model that was rolled back (it may stall or fail again): the running
            # model takes the frame instead, prepared again for its own input.
            assert prepared.image is not None
            fresh = self.prepare(prepared.image)
            generation, again = fresh.generation, fresh.value
        model, health = self._of(generation)
        with self._lock:
            self._calls += 1
            call = self._calls
            health.running[call] = time.monotonic()
        try:
            value = model.infer(prepared.value if again is None else again)
            return _Tagged(generation, value, prepared=again)
        except Exception as exc:
            self._failed(health, "inference", exc)
            raise
        finally:
            with self._lock:
                started = health.running.pop(call, None)
                if started is not None:
                    health.infer_s += time.monotonic() - started
                    health.inferred += 1

    def finish(self, outputs: _Tagged, prepared: _Tagged) -> Detections:
        model, health = self._of(outputs.generation)
        try:
            found = model.finish(
                outputs.value, prepared.value if outputs.prepared is None else outputs.prepared
            )
            _check_finite(found)
        except Exception as exc:
            self._failed(health, "post-processing", exc)
            raise
        with self._lock:
            health.frames += 1
            health.last_finished = time.monotonic()
        return found

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        prepared = self.prepare(image)
        return self.finish(self.infer(prepared), prepared)

    # -- for the updater -----------------------------------------------------------------------

    def swap(self, detector: StagedDetector) -> int:
        """Frames prepared from now on run on ``detector``; returns its generation."""
        with self._lock:
            self._generation += 1
            self._models[self._generation] = detector
            self._health[self._generation] = GenerationHealth()
            for old in [g for g in self._models if g <= self._generation - KEEP_GENERATIONS]:
                del self._models[old]
                del self._health[old]
                self._revoked.discard(old)
            return self._generation

    def roll_back(self, generation: int, detector: StagedDetector) -> int:
        """Swap ``detector`` back in place of ``generation``'s model; frames still waiting for that
        model are prepared again for ``detector`` (a stalled model must not get them)."""
        with self._lock:
            self._revoked.add(generation)
        return self.swap(detector)

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def health(self, generation: int) -> GenerationHealth:
        with self._lock:
            return self._health[generation].snapshot()

    def _of(self, generation: int) -> tuple[StagedDetector, GenerationHealth]:
        with self._lock:
            return self._models[generation], self._health[generation]

    def _failed(self, health: GenerationHealth, stage: str, exc: Exception) -> None:
        with self._lock:
            if health.failure is None:
                health.failure = f"{stage} failed: {type(exc).__name__}: {exc}"[:300]


def _check_finite(found: Detections) -> None:
    if len(found) and not (np.isfinite(found.xyxy).all() and np.isfinite(found.confidence).all()):
        raise ValueError("the model produced NaN or infinite boxes or scores")

"""The truck load classifier's slot: its model can be replaced while the pipeline runs, between calls.

The load stage asks the classifier once per confirmed truck, on the events thread; an update
swaps the model from its own thread. Each call takes the model (and its generation) under the
lock and runs wholly on it, so a call never mixes two models, and a swap waits for nothing:
the next call runs on the new model. The verdict names the model that gave it
(:attr:`edge.truck_load.LoadVerdict.model`), so an event never names a model that did not
answer it.

The slot keeps what an update needs: the last crops the classifier was asked about (the probe
compares the old and new models' answers on them) and, per generation, the calls made, the
first failure and the calls still running (a probation reads them; the detector slot's
:class:`edge.updates.swappable.GenerationHealth`, with ``frames`` counting classified crops).
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from edge.truck_load import LoadClassifier, LoadVerdict
from edge.updates.swappable import GenerationHealth
from streetwatch.events import ModelRef

#: Recent truck crops kept for probing a new model (references to best frames evidence keeps anyway).
RECENT_CROPS = 4
#: Generations whose health is kept (the running one and the few before it).
KEEP_GENERATIONS = 3

BoxT = tuple[float, float, float, float]
Crop = tuple[NDArray[np.uint8], BoxT]


class SwappableClassifier:
    """A :class:`edge.truck_load.LoadClassifier` whose model :meth:`swap` replaces between calls."""

    def __init__(self, classifier: LoadClassifier) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._model = classifier
        self._health: dict[int, GenerationHealth] = {0: GenerationHealth()}
        self._calls = 0
        self._recent: collections.deque[Crop] = collections.deque(maxlen=RECENT_CROPS)

    # -- the load stage's side -------------------------------------------------------------------

    @property
    def current(self) -> LoadClassifier:
        with self._lock:
            return self._model

    @property
    def label(self) -> str:
        return self.current.label

    @property
    def ref(self) -> ModelRef:
        return self.current.ref

    def classify(self, image: NDArray[np.uint8], box: Sequence[float]) -> LoadVerdict:
        with self._lock:
            model, health = self._model, self._health[self._generation]
            self._calls += 1
            call = self._calls
            health.running[call] = time.monotonic()
            self._recent.append((image, (float(box[0]), float(box[1]), float(box[2]), float(box[3]))))
        try:
            verdict = model.classify(image, box)
        except Exception as exc:
            with self._lock:
                if health.failure is None:
                    health.failure = f"classification failed: {type(exc).__name__}: {exc}"[:300]
            raise
        finally:
            with self._lock:
                started = health.running.pop(call, None)
                if started is not None:
                    health.infer_s += time.monotonic() - started
                    health.inferred += 1
        with self._lock:
            health.frames += 1
            health.last_finished = time.monotonic()
        return verdict

    # -- for the updater -------------------------------------------------------------------------

    def recent_crops(self) -> list[Crop]:
        with self._lock:
            return list(self._recent)

    def swap(self, classifier: LoadClassifier) -> int:
        """Calls from now on run on ``classifier``; returns its generation."""
        with self._lock:
            self._generation += 1
            self._model = classifier
            self._health[self._generation] = GenerationHealth()
            for old in [g for g in self._health if g <= self._generation - KEEP_GENERATIONS]:
                del self._health[old]
            return self._generation

    @property
    def generation(self) -> int:
        with self._lock:
            return self._generation

    def health(self, generation: int) -> GenerationHealth:
        with self._lock:
            return self._health[generation].snapshot()

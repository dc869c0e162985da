"""Counters and per-stage timings of the edge pipeline, for logs and telemetry."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: Stages in pipeline order; each is timed in the thread that runs it. ``starved`` is the time
#: inference waited for a prepared frame: high when decoding, not the model, limits the rate.
STAGES: tuple[str, ...] = (
    "decode", "prepare", "starved", "infer", "finish", "track", "rules", "evidence", "sink"
)  # fmt: skip


class PipelineStats:
    """Thread-safe counters; ``snapshot()`` gives a plain dict (fps, counts, mean ms per stage)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._stage_s = dict.fromkeys(STAGES, 0.0)
        self._stage_n = dict.fromkeys(STAGES, 0)
        self.frames = 0  # frames that went all the way through
        self.dropped = 0  # live frames skipped because inference was behind
        self.errors = 0  # frames lost to an error (logged)
        self.events = 0  # events handed to the sink
        self.evidence_failures = 0
        self.load_silenced = 0  # truck events not sent: the load classifier found the truck sealed

    def add_time(self, stage: str, seconds: float, count: bool = True) -> None:
        """Add ``seconds`` to ``stage``; ``count=False`` adds to the frame being waited for."""
        with self._lock:
            self._stage_s[stage] += seconds
            self._stage_n[stage] += int(count)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_time(stage, time.perf_counter() - start)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self._started

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            elapsed = max(self.elapsed_s, 1e-9)
            return {
                "frames": self.frames,
                "fps": round(self.frames / elapsed, 2),
                "dropped": self.dropped,
                "errors": self.errors,
                "events": self.events,
                "evidence_failures": self.evidence_failures,
                "load_silenced": self.load_silenced,
                "elapsed_s": round(elapsed, 2),
                "stage_ms": self._stage_ms(),
            }

    def _stage_ms(self) -> dict[str, float]:
        return {s: round(1000 * self._stage_s[s] / n, 2) for s in STAGES if (n := self._stage_n[s])}

    def summary(self) -> str:
        snap = self.snapshot()
        with self._lock:
            stages = " ".join(f"{k}={v}" for k, v in self._stage_ms().items())
        return (
            f"{snap['frames']} frames at {snap['fps']} fps, {snap['dropped']} dropped, "
            f"{snap['errors']} errors, {snap['events']} events; mean ms per frame: {stages}"
        )

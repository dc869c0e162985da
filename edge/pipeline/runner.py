"""``EdgePipeline``: one camera's frames through detector -> tracker -> rules -> evidence -> sink.

The parts come ready (:func:`edge.pipeline.build.from_config` builds them from a device
config); this module only runs them. Threads overlap the work of consecutive frames:

* the *reader* decodes frames and letterboxes them into model inputs (OpenCV
  releases the GIL), a few frames ahead, into a bounded queue (:mod:`edge.pipeline.reader`);
* *inference workers* (the main thread and ``inference_workers - 1`` more) each
  run the models on a different frame (onnxruntime releases the GIL); see
  :mod:`edge.pipeline.infer` for why frames in parallel beat threads per frame;
* the *events* thread puts the results back in frame order and runs the rest of the
  walk in :meth:`EdgePipeline._process` and :meth:`EdgePipeline._deliver`: decode the model
  outputs, fuse, track, locate, apply the rules, keep evidence, ask the second stage, and
  hand the events to the sink.

A frame that fails at any stage is logged and skipped; the loop goes on. At the
end (source over, ``max_frames``, ``stop()``, SIGINT/SIGTERM) open violations
get their ``end`` event and the parts are closed.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.config import DeviceConfig
from edge.detections import Detections
from edge.detector.staged import StagedDetector
from edge.evidence import EvidenceRecorder
from edge.frames import Frame
from edge.interfaces import DeviceLink, EventSink, FrameSource, Locator, Tracker
from edge.pipeline.infer import InferenceWorkers, Inferred, InOrder, Numbered
from edge.pipeline.reader import FrameReader, lower_thread_priority
from edge.pipeline.stats import PipelineStats
from edge.rules import RuleEngine, RuleResult
from edge.sd_notify import SystemdNotifier
from streetwatch.errors import SourceError, StreetWatchError
from streetwatch.events import Position

if TYPE_CHECKING:
    from edge.detector.fusion import BoxFusion
    from edge.truck_load import LoadStage
    from edge.updates import BoxUpdates

log = logging.getLogger(__name__)

LIVE_SOURCE_KINDS = ("stream", "usb", "gstreamer")
_WARN_EVERY = 100  # repeat a recurring warning once per this many occurrences


class EdgePipeline:
    """Runs one camera's detection loop on ready parts, and owns them: a run closes them at its end.

    >>> # pipeline = from_config(load_config("deploy/edge.demo.yaml"))   # edge.pipeline.build
    >>> # stats = pipeline.run(max_frames=100)
    """

    def __init__(
        self,
        config: DeviceConfig,
        *,
        source: FrameSource,
        detectors: Sequence[StagedDetector],
        tracker: Tracker,
        rules: RuleEngine,
        evidence: EvidenceRecorder,
        sink: EventSink,
        locator: Locator,
        link: DeviceLink | None = None,
        fusion: BoxFusion | None = None,
        load_stage: LoadStage | None = None,
        inference_workers: int = 1,
        systemd: SystemdNotifier | None = None,
        log_interval_s: float = 60.0,
        helper_nice: int = 5,
    ) -> None:
        """The parts in the order a frame meets them. ``link``: the box's line to the server
        (status, telemetry, commands), None without one; ``fusion`` and ``load_stage`` (the truck
        load second stage) only when configured."""
        self.config = config
        self.source = source
        self.detectors = list(detectors)  # a list: model updates swap detectors in place
        self.fusion = fusion
        self.tracker = tracker
        self.locator = locator
        self.rules = rules
        self.evidence = evidence
        self.load_stage = load_stage
        self.sink = sink
        self.link = link
        #: Over-the-air updates of this pipeline (set by ``from_config`` when the config has them).
        self.updates: BoxUpdates | None = None
        self.inference_workers = inference_workers
        self.systemd = systemd or SystemdNotifier.from_environment()
        self.helper_nice = helper_nice  # reader and events threads run this much nicer than inference
        self.stats = PipelineStats()
        self.log_interval_s = log_interval_s
        self._stop = threading.Event()
        self._closed = False
        self._last_time: datetime | None = None
        self._last_log = time.monotonic()
        self._warnings: dict[str, int] = {}

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe; open violations are still ended and the sink closed)."""
        self._stop.set()

    def run(self, max_frames: int | None = None, handle_signals: bool = False) -> PipelineStats:
        """Process frames until the source ends, ``max_frames`` are done, or ``stop()``/a signal.

        A pipeline runs once: at the end its parts are closed (:meth:`close`). Raises
        :class:`SourceError` after a clean shutdown when the source failed for good.
        """
        previous = self._install_signals() if handle_signals else {}
        live = self.config.source.kind in LIVE_SOURCE_KINDS
        reader = FrameReader(
            self.source, self.detectors, self.stats, self._stop, live=live, nice=self.helper_nice
        )
        inferred: queue.Queue[Numbered | None] = queue.Queue(maxsize=2 * self.inference_workers)
        infer = InferenceWorkers(
            reader, self.detectors, self.stats, self._stop, inferred, self._frame_failed, max_frames
        )
        worker = threading.Thread(target=self._events_loop, args=(inferred,), name="events", daemon=True)
        helpers = [
            threading.Thread(target=infer.run_worker, name=f"infer-{i}", daemon=True)
            for i in range(1, self.inference_workers)
        ]
        try:
            self.systemd.ready()
            self.systemd.status("running")
            if self.link is not None:
                self.link.running()  # status phase running; telemetry back to its interval
            reader.start()
            worker.start()
            for helper in helpers:
                helper.start()
            infer.run_worker(on_each=self._maybe_log)  # the main thread is worker 0
        finally:
            self._stop.set()
            for helper in helpers:
                helper.join()  # their last results are queued before the end marker below
            inferred.put(None)
            worker.join()
            try:
                self._deliver(None, self.rules.flush(self._last_time or datetime.now().astimezone()))
            except Exception as exc:  # the sink must still be closed (an MQTT outbox flushes on close)
                log.error("ending the open violations failed: %s", exc)
            if not reader.join(timeout=5.0):
                log.warning("the frame reader did not stop within 5 s; closing the source under it")
            self.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            log.info("pipeline stopped: %s", self.stats.summary())
        source_error = infer.source_error
        if source_error is not None:
            if isinstance(source_error, StreetWatchError):
                raise source_error
            raise SourceError(f"source {self.source.name} failed: {source_error}") from source_error
        return self.stats

    def _maybe_log(self) -> None:
        now = time.monotonic()
        if now - self._last_log >= self.log_interval_s:
            self._last_log = now
            log.info("pipeline: %s", self.stats.summary())

    # -- the events thread: decode, track, rules, evidence, sink ---------------------------------

    def _events_loop(self, inferred: queue.Queue[Numbered | None]) -> None:
        lower_thread_priority(self.helper_nice)
        order: InOrder[Inferred] = InOrder()
        while True:
            numbered = inferred.get()
            if numbered is None:
                return
            for item in order.add(*numbered):
                try:
                    self._process(item)
                except Exception as exc:
                    self._frame_failed(item.frame, "post-processing", exc)

    def _process(self, item: Inferred) -> None:
        frame = item.frame
        with self.stats.timed("finish"):
            stages = zip(self.detectors, item.outputs, item.prepared, strict=True)
            parts = [_from_detector(i, d.finish(o, p)) for i, (d, o, p) in enumerate(stages)]
            detections = Detections.merge(parts)
            if self.fusion is not None:
                detections = self.fusion.fuse(detections)
        with self.stats.timed("track"):
            tracked = self.tracker.update(detections, frame.timestamp)
        position = self._position_at(frame.timestamp)
        with self.stats.timed("rules"):
            result = self.rules.trigger(frame, tracked, position)
        self._last_time = frame.timestamp
        self._deliver(frame, result, position)
        self.stats.count("frames")
        self.systemd.watchdog()  # frames flow; a stalled pipeline stops pinging and systemd restarts it
        if self.updates is not None:
            self.updates.note_frame(frame)
        if self.link is not None:
            self.link.telemetry.note_frame()
            if position is not None:
                self.link.telemetry.note_position(position, frame.timestamp)

    def _deliver(self, frame: Frame | None, result: RuleResult, position: Position | None = None) -> None:
        """Keep offered frames (with the camera's fix then), send events with their evidence, then
        forget released frames."""
        with self.stats.timed("evidence"):
            if frame is not None:
                for offer in result.offers:
                    self.evidence.offer(
                        offer.evidence_key, frame, offer.box, offer.label, offer.score, position=position
                    )
                for view in result.views:
                    self.evidence.offer_view(
                        view.evidence_key, frame, view.box, view.label, view.score, position=position
                    )
            events = result.events
            if self.load_stage is not None:
                silenced = self.load_stage.silenced_events
                events = self.load_stage.review(events, self.evidence.stage_view)
                self.stats.count("load_silenced", self.load_stage.silenced_events - silenced)
            outgoing = []
            for triggered in events:
                failures = self.evidence.failures
                evidence = self.evidence.evidence_for(triggered.evidence_key, triggered.event)
                self.stats.count("evidence_failures", self.evidence.failures - failures)
                event = triggered.event
                if evidence is not None:
                    ref = evidence.ref_for((event.frame_width, event.frame_height))
                    event = event.model_copy(update={"evidence": ref})
                outgoing.append((event, evidence))
        for event, evidence in outgoing:
            try:
                with self.stats.timed("sink"):
                    self.sink.emit(event, evidence)
                self.stats.count("events")
            except Exception as exc:
                self.stats.count("errors")
                log.error("event %s (%s %s) could not be handed to the sink: %s",
                          event.event_id, event.violation_type.value, event.lifecycle.value, exc)  # fmt: skip
        for key in result.released:
            self.evidence.release(key)

    def _position_at(self, when: datetime) -> Position | None:
        try:
            return self.locator.position_at(when)
        except Exception as exc:
            self._warn("location", "no position for the frame at %s: %s", when.isoformat(), exc)
            return None

    # -- helpers ---------------------------------------------------------------------------------

    def _frame_failed(self, frame: Frame, stage: str, exc: Exception) -> None:
        self.stats.count("errors")
        self._warn(stage, "frame %d of %s skipped: %s failed: %s", frame.index, frame.source, stage, exc)

    def _warn(self, kind: str, message: str, *args: object) -> None:
        # A recurring fault (a dead GPS, a broken model) must not flood the log of a box on a cellular link.
        seen = self._warnings.get(kind, 0)
        self._warnings[kind] = seen + 1
        if seen % _WARN_EVERY == 0:
            suffix = f" (seen {seen + 1} times)" if seen else ""
            log.warning(message + suffix, *args)

    def _install_signals(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous: dict[int, Any] = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt  # a second signal: stop waiting for a clean shutdown
        name = signal.Signals(signum).name
        log.info("%s received: finishing (ending open violations, closing the sink)", name)
        self._stop.set()

    def close(self) -> None:
        """Close the parts, the sink before its link (``run`` does it at its end; a pipeline that
        never runs is closed with this)."""
        if self._closed:
            return
        self._closed = True
        for part in (self.updates, self.source, self.locator, self.sink, self.link):
            if part is None:
                continue
            try:
                part.close()
            except Exception as exc:
                log.warning("closing %s failed: %s", type(part).__name__, exc)


def _from_detector(index: int, found: Detections) -> Detections:
    """Rows labelled with the detector's place in the list: the class map and model refs key on it."""
    if not len(found) or bool((found.detector_index == index).all()):
        return found
    return replace(found, detector_index=np.full(len(found), index, dtype=np.int64))

"""``EdgePipeline``: source -> detectors -> tracker -> rules -> evidence -> sink, for one camera.

Threads overlap the work of consecutive frames:

* the *reader* decodes frames and letterboxes them into model inputs (OpenCV
  releases the GIL), a few frames ahead, into a bounded queue;
* *inference workers* (the main thread and ``inference_workers - 1`` more) each
  run the models on a different frame (onnxruntime releases the GIL); see
  :mod:`edge.pipeline_infer` for why frames in parallel beat threads per frame;
* the *events* thread puts the results back in frame order, decodes model
  outputs, tracks, applies the rules, cuts evidence and hands events to the sink.

A frame that fails at any stage is logged and skipped; the loop goes on. At the
end (source over, ``max_frames``, ``stop()``, SIGINT/SIGTERM) open violations
get their ``end`` event and the sink is closed.
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
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import numpy as np

from edge.config import DeviceConfig
from edge.detections import Detections
from edge.detector.session import CPU, cpu_threads
from edge.detector.staged import StagedDetector, as_staged
from edge.evidence import EvidenceRecorder
from edge.frames import Frame
from edge.interfaces import Detector, DeviceLink, EventSink, FrameSource, Locator, Tracker
from edge.pipeline_infer import InferenceWorkers, Inferred, InOrder, Numbered
from edge.pipeline_reader import FrameReader, lower_thread_priority
from edge.pipeline_stats import PipelineStats
from edge.rules import RuleEngine, RuleResult
from edge.sd_notify import SystemdNotifier
from edge.startup import DetectorLoader, load_detectors, prepare_engines, reporter_of
from edge.tensorrt_cache import Opener
from streetwatch.errors import SourceError, StreetWatchError
from streetwatch.events import ModelRef, Position

if TYPE_CHECKING:
    from edge.sinks import OpenedSink

if TYPE_CHECKING:
    from edge.detector.fusion import BoxFusion
    from edge.truck_load import LoadStage
    from edge.updates import BoxUpdates

log = logging.getLogger(__name__)

LIVE_SOURCE_KINDS = ("stream", "usb", "gstreamer")
_WARN_EVERY = 100  # repeat a recurring warning once per this many occurrences


class EdgePipeline:
    """Runs one camera's detection loop. Parts not given are built from ``config``.

    >>> # pipeline = EdgePipeline(load_config("deploy/edge.demo.yaml"))
    >>> # stats = pipeline.run(max_frames=100)
    """

    def __init__(
        self,
        config: DeviceConfig,
        *,
        detectors: Sequence[Detector | StagedDetector] | None = None,
        tracker: Tracker | None = None,
        sink: EventSink | None = None,
        link: DeviceLink | None = None,
        evidence: EvidenceRecorder | None = None,
        locator: Locator | None = None,
        source: FrameSource | None = None,
        log_interval_s: float = 60.0,
        helper_nice: int = 5,
        engine_opener: Opener | None = None,
        detector_loader: DetectorLoader | None = None,
    ) -> None:
        """``engine_opener`` / ``detector_loader``: the seams of :mod:`edge.startup` (TensorRT
        engine build, detector open); None uses the real ones."""
        configured = config
        config = _installed_models(config)  # updates installed over the air; a cut probation rolled back
        self.config = config
        self.systemd = SystemdNotifier.from_environment()
        self.helper_nice = helper_nice  # reader and events threads run this much nicer than inference
        self.stats = PipelineStats()
        self.log_interval_s = log_interval_s
        self._stop = threading.Event()
        self._opened: list[Any] = []  # parts to close, in opening order
        workers, session_threads = inference_plan(config.inference_workers)
        self.systemd.status("loading models")  # shown by systemctl status while a long start runs
        try:
            # The link first: while models load (TensorRT builds take minutes) the server hears about it.
            self.sink, self.link = (sink, link) if sink is not None else _open_sink(config, [])
            self._opened += [part for part in (self.link, self.sink) if part is not None]
            report = reporter_of(self.link)
            if detectors is None:
                prepare_engines(config, report, engine_opener)
                detectors = load_detectors(config, session_threads, report, detector_loader)
            self.detectors = [as_staged(d) for d in detectors]
            self.inference_workers = _workers_for(config, self.detectors, workers)
            self.fusion = _make_fusion(config)
            self.tracker = tracker or _make_tracker(config)
            self.rules = RuleEngine.from_config(config, [d.info.ref for d in self.detectors])
            self.evidence = evidence or EvidenceRecorder(config.evidence)
            self.load_stage = _make_load_stage(config)
            if self.link is not None:
                self.link.set_models([d.info.ref for d in self.detectors])
                if self.load_stage is not None:  # silenced trucks stay visible
                    self.link.telemetry.count_trucks_with(self.load_stage.telemetry)
            self.locator = locator or _open_locator(config)
            self._opened.append(self.locator)
            self.source = source or _open_source(config)
            self._opened.append(self.source)
            self.updates = _open_updates(self, configured)
            if self.updates is not None:
                self._opened.append(self.updates)
        except BaseException:
            self._close_opened()
            raise
        self._last_time: datetime | None = None
        self._last_log = time.monotonic()
        self._warnings: dict[str, int] = {}

    # -- control ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe; open violations are still ended and the sink closed)."""
        self._stop.set()

    def run(self, max_frames: int | None = None, handle_signals: bool = False) -> PipelineStats:
        """Process frames until the source ends, ``max_frames`` are done, or ``stop()``/a signal.

        A pipeline runs once: at the end its source and sink are closed. Raises
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
            reporter_of(self.link).running()  # status phase running; telemetry back to its interval
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
            self._close_opened()
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
        self._deliver(frame, result)
        self.stats.count("frames")
        self.systemd.watchdog()  # frames flow; a stalled pipeline stops pinging and systemd restarts it
        if self.updates is not None:
            self.updates.note_frame(frame)
        if self.link is not None:
            self.link.telemetry.note_frame()
            if position is not None:
                self.link.telemetry.note_position(position, frame.timestamp)

    def _deliver(self, frame: Frame | None, result: RuleResult) -> None:
        """Keep offered frames, send events with their evidence, then forget released frames."""
        with self.stats.timed("evidence"):
            if frame is not None:
                for offer in result.offers:
                    self.evidence.offer(offer.evidence_key, frame, offer.box, offer.label, offer.score)
            events = result.events
            if self.load_stage is not None:
                silenced = self.load_stage.silenced_events
                events = self.load_stage.review(events, self.evidence.best_view)
                self.stats.count("load_silenced", self.load_stage.silenced_events - silenced)
            outgoing = []
            for triggered in events:
                failures = self.evidence.failures
                evidence = self.evidence.evidence_for(triggered.evidence_key)
                self.stats.count("evidence_failures", self.evidence.failures - failures)
                event = triggered.event
                if evidence is not None:
                    event = event.model_copy(update={"evidence": evidence.ref})
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

    def _close_opened(self) -> None:
        for part in reversed(self._opened):
            try:
                part.close()
            except Exception as exc:
                log.warning("closing %s failed: %s", type(part).__name__, exc)
        self._opened.clear()


def _from_detector(index: int, found: Detections) -> Detections:
    """Rows labelled with the detector's place in the list: the class map and model refs key on it."""
    if not len(found) or bool((found.detector_index == index).all()):
        return found
    return replace(found, detector_index=np.full(len(found), index, dtype=np.int64))


# Builders of the default parts; imported lazily so tests with fakes need none of them.


def inference_plan(configured_workers: int | None) -> tuple[int, int]:
    """(inference workers, onnxruntime intra-op threads per session) for this box's cores.

    The default splits the cores between frames, one thread each (see edge.pipeline_infer);
    ``inference_workers`` in the config overrides it and the cores are shared out among them.
    """
    cores = cpu_threads()
    workers = configured_workers or cores
    return workers, max(1, cores // workers)


def _workers_for(config: DeviceConfig, detectors: Sequence[StagedDetector], planned: int) -> int:
    """A GPU already overlaps frames itself: unless configured, run one frame at a time there."""
    if config.inference_workers is not None:
        return planned
    on_gpu = any(getattr(d, "providers", [CPU])[0] != CPU for d in detectors)
    return 1 if on_gpu else planned


def _make_fusion(config: DeviceConfig) -> BoxFusion | None:
    from edge.detector.fusion import BoxFusion

    return BoxFusion(config.fusion) if config.fusion is not None else None


def _make_load_stage(config: DeviceConfig) -> LoadStage | None:
    if config.truck_load is None:
        return None
    from edge.truck_load import LoadClassifier, LoadStage

    cfg = config.truck_load
    # One thread: it runs once per truck on the events thread, beside the inference workers.
    return LoadStage(LoadClassifier(Path(cfg.model), cfg.providers, threads=1), cfg)


def _installed_models(config: DeviceConfig) -> DeviceConfig:
    if config.updates is None:
        return config
    from edge.updates import installed_config

    return installed_config(config)


def _open_updates(pipeline: EdgePipeline, configured: DeviceConfig) -> BoxUpdates | None:
    if configured.updates is None:
        return None
    from edge.updates import BoxUpdates

    return BoxUpdates(pipeline, configured)


def _make_tracker(config: DeviceConfig) -> Tracker:
    from edge.tracker import ByteTracker

    return ByteTracker(config.tracker)


def _open_sink(config: DeviceConfig, models: Sequence[ModelRef]) -> OpenedSink:
    from edge.sinks import open_sink

    return open_sink(config, models)


def _open_locator(config: DeviceConfig) -> Locator:
    from edge.location import open_locator

    return open_locator(config.location)


def _open_source(config: DeviceConfig) -> FrameSource:
    from edge.sources import open_source

    return open_source(config.source, name=config.camera_id)

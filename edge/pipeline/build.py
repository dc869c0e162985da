"""``from_config``: one camera's pipeline, its parts built from the device config.

The order matters on a box: the link to the server opens first, so that while the models
load (TensorRT builds take minutes) the server hears about it; then the models and what
depends on them (fusion, tracker, rules, evidence, the truck load stage); the position and
the frames last, once everything that can fail slowly has. Whatever is given replaces what
the config would build (tests, benchmarks, tools). A part that fails to open closes the
ones opened before it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from edge.config import DeviceConfig
from edge.detector.session import CPU, cpu_threads
from edge.detector.staged import StagedDetector, as_staged
from edge.evidence import EvidenceRecorder
from edge.interfaces import Detector, DeviceLink, EventSink, FrameSource, Locator, Tracker
from edge.pipeline.runner import EdgePipeline
from edge.rules import RuleEngine
from edge.sd_notify import SystemdNotifier
from edge.startup import DetectorLoader, load_detectors, prepare_engines, reporter_of
from edge.tensorrt_cache import Opener
from streetwatch.events import ConfigRef

if TYPE_CHECKING:
    from edge.detector.fusion import BoxFusion
    from edge.sinks import OpenedSink
    from edge.truck_load import LoadStage

log = logging.getLogger(__name__)


class _Closable(Protocol):
    def close(self) -> None: ...


def from_config(
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
    installed_as: ConfigRef | None = None,
) -> EdgePipeline:
    """The pipeline ``config`` describes, ready to ``run``.

    ``installed_as``: the release name and version of ``config`` when it was installed over the air
    (``edge.updates.configs.run_box``); its events and status name it. None: the box's own file.

    ``sink`` (with its ``link``, if any) replaces the configured sink; ``engine_opener`` /
    ``detector_loader`` are the seams of :mod:`edge.startup` (TensorRT engine build, detector
    open), None for the real ones.
    """
    configured = config
    config = _installed_models(config)  # updates installed over the air; a cut probation rolled back
    systemd = SystemdNotifier.from_environment()
    workers, session_threads = inference_plan(config.inference_workers)
    systemd.status("loading models")  # shown by systemctl status while a long start runs
    opened: list[_Closable] = []
    try:
        if sink is None:
            sink, link = _open_sink(config)
        opened += [part for part in (link, sink) if part is not None]
        report = reporter_of(link)
        if detectors is None:
            prepare_engines(config, report, engine_opener)
            detectors = load_detectors(config, session_threads, report, detector_loader)
        staged = [as_staged(d) for d in detectors]
        models = [d.info.ref for d in staged]
        fusion = _make_fusion(config)
        tracker = tracker or _make_tracker(config)
        rules = RuleEngine.from_config(config, models, installed_as)
        evidence = evidence or EvidenceRecorder(config.evidence)
        load_stage = _make_load_stage(config)
        if link is not None:
            link.set_config(installed_as)
            # The status names every model the box runs; the load classifier after the detectors.
            link.set_models(models + ([load_stage.classifier.ref] if load_stage is not None else []))
            if load_stage is not None:  # silenced trucks stay visible
                link.telemetry.count_trucks_with(load_stage.telemetry)
        locator = locator or _open_locator(config)
        opened.append(locator)
        source = source or _open_source(config)
        opened.append(source)
    except BaseException:
        _close(opened)
        raise
    pipeline = EdgePipeline(
        config,
        source=source,
        detectors=staged,
        fusion=fusion,
        tracker=tracker,
        locator=locator,
        rules=rules,
        evidence=evidence,
        load_stage=load_stage,
        sink=sink,
        link=link,
        inference_workers=_workers_for(config, staged, workers),
        systemd=systemd,
        log_interval_s=log_interval_s,
        helper_nice=helper_nice,
    )
    if configured.updates is not None:
        try:
            from edge.updates import BoxUpdates

            pipeline.updates = BoxUpdates(pipeline, configured)  # wraps the detectors, takes the commands
        except BaseException:
            pipeline.close()
            raise
    return pipeline


def inference_plan(configured_workers: int | None) -> tuple[int, int]:
    """(inference workers, onnxruntime intra-op threads per session) for this box's cores.

    The default splits the cores between frames, one thread each (see edge.pipeline.infer);
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


def _close(parts: list[_Closable]) -> None:
    for part in reversed(parts):
        try:
            part.close()
        except Exception as exc:
            log.warning("closing %s failed: %s", type(part).__name__, exc)


# Builders of the default parts; imported lazily so tests with fakes need none of them.


def _installed_models(config: DeviceConfig) -> DeviceConfig:
    if config.updates is None:
        return config
    from edge.updates import installed_config

    return installed_config(config)


def _open_sink(config: DeviceConfig) -> OpenedSink:
    from edge.sinks import open_sink

    return open_sink(config)  # the models are named in the status once loaded (set_models)


def _make_fusion(config: DeviceConfig) -> BoxFusion | None:
    from edge.detector.fusion import BoxFusion

    return BoxFusion(config.fusion) if config.fusion is not None else None


def _make_tracker(config: DeviceConfig) -> Tracker:
    from edge.tracker import ByteTracker

    return ByteTracker(config.tracker)


def _make_load_stage(config: DeviceConfig) -> LoadStage | None:
    if config.truck_load is None:
        return None
    from edge.truck_load import LoadClassifier, LoadStage

    cfg = config.truck_load
    # One thread: it runs once per truck on the events thread, beside the inference workers.
    return LoadStage(LoadClassifier(Path(cfg.model), cfg.providers, threads=1), cfg)


def _open_locator(config: DeviceConfig) -> Locator:
    from edge.location import open_locator

    return open_locator(config.location)


def _open_source(config: DeviceConfig) -> FrameSource:
    from edge.sources import open_source

    return open_source(config.source, name=config.camera_id)

"""Before the first frame: build TensorRT engines and open the models, telling the server how far it got.

A first start on a Jetson spends minutes compiling TensorRT engines. The pipeline opens its
link and sink first (the MQTT connection, telemetry thread and outbox), then runs these steps
in-process and reports each one through :class:`edge.interfaces.StartupReport` (the device
link's ``starting``): the retained status says ``phase: starting`` and telemetry carries a
``startup`` object every ``startup_report_interval_s`` until the pipeline calls ``running``.
A box without a link (a file sink) only logs the steps.

Seams (the only things a test on a machine without TensorRT replaces): ``opener`` is the
function that builds one engine (:data:`edge.tensorrt_cache.Opener`), ``loader`` the one
that opens one detector (:func:`edge.detector.load_detector`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edge.interfaces import StartupReport, StartupStep
from edge.tensorrt_cache import TENSORRT, Opener, build_engines, models_in, open_on_tensorrt
from streetwatch.errors import StreetWatchError

if TYPE_CHECKING:
    from edge.config import DetectorConfig, DeviceConfig
    from edge.detector.staged import StagedDetector
    from edge.interfaces import Detector

log = logging.getLogger(__name__)

DetectorLoader = Callable[["DetectorConfig", int, int], "Detector | StagedDetector"]
"""Opens detector ``index`` with ``threads`` CPU threads (:func:`edge.detector.load_detector`)."""


class _LogOnly:
    """For a box without a device link (a JSON-lines file): the log still says it."""

    def starting(self, model: str, step: StartupStep, number: int = 1, total: int = 1) -> None:
        pass

    def running(self) -> None:
        pass


def reporter_of(link: StartupReport | None) -> StartupReport:
    """Where start-up steps are reported: the device link, or only the log."""
    return link if link is not None else _LogOnly()


def prepare_engines(config: DeviceConfig, report: StartupReport, opener: Opener | None = None) -> None:
    """The first-start step (``python -m edge.tensorrt_cache``) in-process, its builds reported.

    Only models configured with the TensorRT provider; without that provider in onnxruntime
    (and no ``opener`` given) there is nothing to build. A failed build is logged and the
    pipeline starts anyway (on CUDA or CPU, slower), as the command-line step does."""
    wanted = {Path(d.model).resolve() for d in config.detectors if TENSORRT in d.providers}
    if config.truck_load is not None and TENSORRT in config.truck_load.providers:
        wanted.add(Path(config.truck_load.model).resolve())
    if not wanted:
        return
    if opener is None:
        import onnxruntime as ort

        if TENSORRT not in ort.get_available_providers():
            return
        opener = open_on_tensorrt
    models = [p for p in models_in(config) if p in wanted]

    def on_build(model: Path, number: int, total: int) -> None:
        report.starting(model.name, "building_tensorrt_engine", number, total)

    try:
        build_engines(models, opener, on_build=on_build)
    except StreetWatchError as exc:
        log.error("TensorRT engines not built: %s; the models open on the next provider", exc)


def load_detectors(
    config: DeviceConfig, threads: int, report: StartupReport, loader: DetectorLoader | None = None
) -> list[Detector | StagedDetector]:
    """Open every configured detector, reporting each as it loads."""
    from edge.detector.flipped import with_flip
    from edge.detector.tiled import with_tiles

    if loader is None:
        from edge.detector import load_detector

        loader = load_detector
    found = []
    total = len(config.detectors)
    for index, cfg in enumerate(config.detectors):
        report.starting(Path(cfg.model).name, "loading", index + 1, total)
        found.append(with_flip(with_tiles(loader(cfg, index, threads), cfg), cfg))  # tiles: small far objects
    return found

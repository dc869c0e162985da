"""``update_model`` for the truck load classifier: the detectors' steps, with a classifier's probe,
slot and probation.

Steps, as for a detector (:mod:`edge.updates.models` owns the shared ones: release check,
download, install state, pruning): ``verify``, ``download``, ``verify``; ``probe``
(:func:`edge.updates.classifier_probe.probe_classifier`: it loads as a load classifier, its
metadata names the released model and version, it answers on the last trucks the box saw,
compared with the running model); the install state names it ``pending``; ``swap`` (the next
call of the load stage runs on it, :class:`edge.updates.classifier_slot.SwappableClassifier`);
``probation``: ``updates.probation_s`` during which a classification that fails, or one still
running after ``stall_s``, swaps the old model back. The stage runs once per truck, so a
probation may see no truck at all: the probe's answers on real crops are what a quiet road
leaves to judge by. The install state is keyed by the configured ``truck_load.model`` path,
and :func:`edge.updates.models.apply_installed_models` starts a box on the installed version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from edge.config import TruckLoadConfig
from edge.mqtt.commands import Replier
from edge.truck_load import LoadClassifier, LoadStage
from edge.updates.artifact import UpdateRefused
from edge.updates.classifier_probe import probe_classifier
from edge.updates.classifier_slot import SwappableClassifier
from streetwatch.messages import UpdateModelCommand

if TYPE_CHECKING:
    from edge.updates.models import ModelUpdater

log = logging.getLogger(__name__)

_POLL_S = 0.1


class LoadModelSlot:
    """The load classifier of a running pipeline, as an update target of its :class:`ModelUpdater`."""

    def __init__(self, updater: ModelUpdater, stage: LoadStage, configured: TruckLoadConfig) -> None:
        self._updater = updater
        self._config = configured
        self._key = configured.model  # install-state key: the configured path, like a detector's
        current = stage.classifier
        if isinstance(current, SwappableClassifier):  # wrapped already (the pipeline's updates rebuilt)
            self.classifier = current
        elif isinstance(current, LoadClassifier):
            self.classifier = SwappableClassifier(current)
        else:
            raise TypeError(f"the load stage's classifier is a {type(current).__name__}, not a model file")
        stage.classifier = self.classifier

    @property
    def name(self) -> str:
        """The model name the ``update_model`` command must give (from the ONNX metadata)."""
        return self.classifier.current.name

    def install(
        self, command: UpdateModelCommand, replier: Replier, progress: Callable[[str, float], None]
    ) -> None:
        running = self.classifier.current
        if running.version == command.version:
            replier.done(step="installed")  # a repeated deploy: nothing to do
            return
        updater, updates = self._updater, self._updater.updates
        target = updater.stage_release(command, progress)
        try:
            new, report = probe_classifier(
                target,
                name=command.name,
                version=command.version,
                providers=self._config.providers,
                old=running,
                crops=self.classifier.recent_crops(),
                frames=updater.recent_frames(),
                max_drift=updates.max_drift,
            )
        except Exception:  # refused, or the probe itself broke: the file must not stay behind
            updater.discard(target, self._key)
            raise
        log.info(
            "update_model %s %s passed the probe: %d %s, %d of %d answers changed, %.1f ms per crop",
            command.name,
            command.version,
            report.crops,
            "truck crops" if report.trucks else "crop of a recent frame (no truck seen yet)",
            report.changed,
            report.compared,
            report.infer_ms,
        )
        progress("probe", 1.0)

        updater.mark_pending(self._key, command, target)
        generation = self.classifier.swap(new)
        updater.announce()
        progress("swap", 1.0)
        log.info("load classifier %s swapped in (was %s); probation starts", new.label, running.label)

        failure = self._probation(generation)
        if failure is not None:
            self.classifier.swap(running)
            updater.announce()
            updater.drop_pending(self._key, target)
            raise UpdateRefused("probation", f"rolled back to {running.label}: {failure}")
        updater.keep_pending(self._key, target)
        calls = self.classifier.health(generation).frames
        replier.done(step="probation")
        log.info("load classifier %s passed its probation (%d trucks classified) and stays", new.label, calls)

    def _probation(self, generation: int) -> str | None:
        """None when the new model passed; else why it must go."""
        updates = self._updater.updates
        started = time.monotonic()
        while True:
            health = self.classifier.health(generation)
            if health.failure is not None:
                return health.failure
            now = time.monotonic()
            if health.running:
                waited = now - min(health.running.values())
                if waited > updates.stall_s:
                    return f"a classification has not returned for {waited:.0f} s"
            if now - started >= updates.probation_s:
                return None
            if self._updater.wait(_POLL_S):
                return "the pipeline stopped during the probation"

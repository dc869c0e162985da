"""``update_model``: download, check, try, swap in and watch a new model; roll back on trouble.

Steps (each reported on ``.../commands/reply``): ``verify`` the release signature, ``download``
with resume, ``verify`` size and hash, ``probe`` (load, warm up, run on the pipeline's
recent frames, compare with the running model), ``swap`` at a frame boundary
(:class:`edge.updates.swappable.SwappableDetector`), ``probation`` (a failing frame or a
stalled inference rolls back). The install state is written before the swap and
after the probation, so a box that dies in between comes back on the previous model
(:func:`apply_installed_models`, called before the models are loaded). Two versions per
model stay on disk: the running one and the one before it.

The same command updates the truck load classifier when it names that model
(:mod:`edge.updates.load_model`: its own probe and slot, these steps and this install state).
"""

from __future__ import annotations

import collections
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.config import DeviceConfig, UpdatesConfig
from edge.detector.staged import StagedDetector
from edge.frames import Frame
from edge.mqtt.commands import Replier
from edge.updates.artifact import UpdateRefused, _safe, fetch_verified, load_release_key
from edge.updates.load_model import LoadModelSlot
from edge.updates.probe import probe_model
from edge.updates.state import Installed, InstallState
from edge.updates.swappable import SwappableDetector
from streetwatch.events import ModelRef
from streetwatch.file_hash import sha256_file
from streetwatch.messages import UpdateModelCommand

if TYPE_CHECKING:
    from edge.pipeline import EdgePipeline

log = logging.getLogger(__name__)

#: Recent frames kept for probing a new model (references to frames the pipeline made anyway).
RECENT_FRAMES = 4
_POLL_S = 0.1


def apply_installed_models(config: DeviceConfig) -> DeviceConfig:
    """``config`` with each detector's model, and the truck load classifier's, replaced by the
    installed version, if any.

    A model still on probation when the box stopped (crash, SIGKILL, watchdog) is dropped
    here, before anything loads it; its failure is kept to be reported once the box is up.
    A current version whose file is gone or altered falls back to the previous one.
    """
    updates = config.updates
    if updates is None:
        return config
    state = InstallState.load(updates.models_dir)
    changed = False
    detectors = list(config.detectors)
    for i, detector in enumerate(detectors):
        current, dropped = _settle(state, detector.model)
        changed |= dropped
        if current is not None:
            detectors[i] = detector.model_copy(
                update={"model": current.path, "name": current.name, "version": current.version}
            )
    update: dict[str, object] = {"detectors": detectors}
    if config.truck_load is not None:
        current, dropped = _settle(state, config.truck_load.model)
        changed |= dropped
        if current is not None:  # its name and version are in the file's metadata, checked at install
            update["truck_load"] = config.truck_load.model_copy(update={"model": current.path})
    if changed:
        state.save()
    return config.model_copy(update=update)


def _settle(state: InstallState, key: str) -> tuple[Installed | None, bool]:
    """The installed version to run for the configured model ``key`` (None: the configured file),
    and whether the state changed (a cut probation dropped, a damaged file passed over)."""
    slot = state.models.get(key)
    if slot is None:
        return None, False
    changed = False
    if slot.pending is not None:
        pending = slot.pending
        running = slot.current.version if slot.current else "the configured model"
        reason = (
            f"rolled back: the box restarted while {pending.name} {pending.version} was on probation "
            f"(a crash, a kill or a stall); it runs {running}"
        )
        log.error("%s", reason)
        state.unreported.append({"command_id": pending.command_id, "type": "update_model", "reason": reason})
        if pending.path not in {s.path for s in (slot.current, slot.previous) if s is not None}:
            Path(pending.path).unlink(missing_ok=True)
        slot.pending = None
        changed = True
    while slot.current is not None and not _intact(slot.current):
        log.error(
            "installed model %s %s (%s) is missing or altered; falling back to the one before",
            slot.current.name,
            slot.current.version,
            slot.current.path,
        )
        slot.current, slot.previous = slot.previous, None
        changed = True
    return slot.current, changed


def _intact(installed: Installed) -> bool:
    path = Path(installed.path)
    return path.is_file() and sha256_file(path) == installed.sha256


class ModelUpdater:
    """Handles ``update_model`` for a pipeline (one update at a time, on its own thread)."""

    def __init__(self, pipeline: EdgePipeline, configured: DeviceConfig, updates: UpdatesConfig) -> None:
        self._pipeline = pipeline
        self._updates = updates
        self._key = load_release_key(updates.release_public_key)  # a missing key fails at start
        self._keys = [d.model for d in configured.detectors]  # install-state keys: the configured paths
        self._state = InstallState.load(updates.models_dir)
        self._recent: collections.deque[Frame] = collections.deque(maxlen=RECENT_FRAMES)
        self._recent_lock = threading.Lock()
        self._busy: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.slots = [SwappableDetector(d) for d in pipeline.detectors]
        pipeline.detectors[:] = cast(list[StagedDetector], self.slots)  # a property `info` is still an info
        #: The truck load classifier's slot (None: the box runs no load stage).
        self.load: LoadModelSlot | None = None
        if pipeline.load_stage is not None and configured.truck_load is not None:
            self.load = LoadModelSlot(self, pipeline.load_stage, configured.truck_load)

    # -- the pipeline's side ---------------------------------------------------------------------

    def note_frame(self, frame: Frame) -> None:
        with self._recent_lock:
            self._recent.append(frame)

    def recent_frames(self) -> list[Frame]:
        with self._recent_lock:  # copying a deque another thread appends to can raise
            return list(self._recent)

    def report_unreported(self) -> None:
        """Say what became of updates a restart cut short (the replies wait in the MQTT client if offline)."""
        link = self._pipeline.link
        reply = link.reply if link is not None else None
        for state in (self._state, InstallState.load(self._updates.configs_dir)):
            if not state.unreported:
                continue
            for item in state.unreported:
                step = "probation" if item["type"] == "update_model" else "apply"
                Replier(reply, item["command_id"], item["type"]).failed(item["reason"], step=step)
            state.unreported.clear()
            state.save()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    # -- the command ------------------------------------------------------------------------------

    def handle(self, command: UpdateModelCommand, replier: Replier) -> None:
        if not self.claim(command.command_id, replier):
            return
        self._thread = threading.Thread(
            target=self._run, args=(command, replier), name="model-update", daemon=True
        )
        self._thread.start()

    @property
    def release_key(self) -> Ed25519PublicKey:
        return self._key

    def claim(self, command_id: str, replier: Replier) -> bool:
        """Take the box's one update slot (models and configurations alike); False: refused and answered."""
        with self._lock:
            if self._busy is not None:
                replier.failed(f"another update (command {self._busy!r}) is running; send it again later")
                return False
            self._busy = command_id
            return True

    def release(self) -> None:
        with self._lock:
            self._busy = None

    def _run(self, command: UpdateModelCommand, replier: Replier) -> None:
        try:
            self._install(command, replier)
        except UpdateRefused as exc:
            log.error(
                "update_model %s %s refused at %s: %s", command.name, command.version, exc.step, exc.reason
            )
            replier.failed(exc.reason, step=exc.step)
        except Exception as exc:  # whatever goes wrong, the running model stays and the box says why
            log.exception("update_model %s %s failed", command.name, command.version)
            replier.failed(f"unexpected error: {type(exc).__name__}: {exc}")
        finally:
            self.release()

    def _install(self, command: UpdateModelCommand, replier: Replier) -> None:
        def progress(step: str, share: float | None = None) -> None:
            replier.progress(step, share)
            self._pipeline.systemd.status(f"update_model {command.name} {command.version}: {step}")

        if self.load is not None and command.name == self.load.name:
            self.load.install(command, replier, progress)
            return
        index = self._index_of(command.name)
        slot = self.slots[index]
        if slot.info.version == command.version:
            replier.done(step="installed")  # a repeated deploy: nothing to do
            return

        target = self.stage_release(command, progress)

        old_detector = slot.current
        old_ref = slot.info.ref
        try:
            detector, report = probe_model(
                target,
                config=self._pipeline.config,
                index=index,
                name=command.name,
                version=command.version,
                old=old_detector,
                frames=self.recent_frames(),
                max_drift=self._updates.max_drift,
                threads=self._threads(),
            )
        except UpdateRefused:
            self.discard(target, self._keys[index])
            raise
        log.info(
            "update_model %s %s passed the probe: %d frames, %d vs %d objects, drift %.2f, %.1f ms/frame",
            command.name,
            command.version,
            report.frames,
            report.new_detections,
            report.old_detections,
            report.drift,
            report.infer_ms,
        )
        progress("probe", 1.0)

        self.mark_pending(self._keys[index], command, target)
        generation = slot.swap(detector)
        self._announce(index)
        progress("swap", 1.0)
        log.info(
            "model %s %s swapped in (was %s); probation starts",
            command.name,
            command.version,
            old_ref.version,
        )

        failure = self._probation(slot, generation, slot.health(generation - 1).mean_infer_s)
        if failure is not None:
            slot.roll_back(generation, old_detector)
            self._announce(index)
            self.drop_pending(self._keys[index], target)
            raise UpdateRefused("probation", f"rolled back to {old_ref.name} {old_ref.version}: {failure}")

        self.keep_pending(self._keys[index], target)
        replier.done(step="probation")
        log.info("model %s %s passed its probation and stays", command.name, command.version)

    # -- steps shared with the load classifier's slot (edge.updates.load_model) -------------------

    @property
    def state(self) -> InstallState:
        return self._state

    @property
    def updates(self) -> UpdatesConfig:
        return self._updates

    def stage_release(self, command: UpdateModelCommand, progress: Callable[[str, float], None]) -> Path:
        """Verify, download and check the release, then move it into ``models_dir`` (fsynced)."""
        staged = fetch_verified("model", command, self._updates, self._key, progress)
        target = (
            Path(self._updates.models_dir)
            / _safe(command.name)
            / (f"{_safe(command.version)}-{command.sha256[:12]}.onnx")
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), target)
        _fsync(target)
        return target

    def mark_pending(self, key: str, command: UpdateModelCommand, target: Path) -> None:
        """Written before the swap: a box that dies from here on comes back on the old model."""
        self._state.slot(key).pending = Installed(
            command.name, command.version, str(target), command.sha256, command.command_id
        )
        self._state.save()

    def drop_pending(self, key: str, target: Path) -> None:
        """The probation failed and the old model runs again: forget and delete the new one."""
        self._state.slot(key).pending = None
        self._state.save()
        self.discard(target, key)
        self._pipeline.systemd.status("running")

    def keep_pending(self, key: str, target: Path) -> None:
        """The probation passed: the new model is current, the one before it previous, older ones go."""
        slot = self._state.slot(key)
        slot.previous, slot.current, slot.pending = slot.current, slot.pending, None
        self._state.save()
        self._prune(target.parent, slot.current, slot.previous)
        self._pipeline.systemd.status("running")

    def discard(self, path: Path, key: str) -> None:
        """Delete a refused model file, unless it is an installed version (a redeploy of the previous one)."""
        slot = self._state.slot(key)
        kept = {Path(s.path).resolve() for s in (slot.current, slot.previous) if s is not None}
        if path.resolve() not in kept:
            path.unlink(missing_ok=True)

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless the updater closes first (True: it closed)."""
        return self._stop.wait(seconds)

    def _probation(self, slot: SwappableDetector, generation: int, old_infer_s: float | None) -> str | None:
        """None when the new model passed; else why it must go. ``old_infer_s``: the old model's mean."""
        started = time.monotonic()
        while True:
            health = slot.health(generation)
            if health.failure is not None:
                return health.failure
            now = time.monotonic()
            if health.running:
                waited = now - min(health.running.values())
                if waited > self._updates.stall_s:
                    return f"the pipeline stalled: an inference has not returned for {waited:.0f} s"
            if health.frames >= self._updates.probation_frames:
                new_infer_s = health.mean_infer_s
                limit = self._updates.max_slowdown
                if old_infer_s and new_infer_s and new_infer_s > limit * old_infer_s:
                    return (
                        f"it is too slow: {1000 * new_infer_s:.0f} ms per frame against "
                        f"{1000 * old_infer_s:.0f} ms for the old model (updates.max_slowdown is {limit:g})"
                    )
                if now - started >= self._updates.probation_s:
                    return None
            if self._stop.wait(_POLL_S):
                return "the pipeline stopped during the probation"

    def _index_of(self, name: str) -> int:
        names = [s.info.name for s in self.slots]
        if name not in names:
            runs = f"it runs: {', '.join(names)}" + (
                f", and the load classifier {self.load.name}"
                if self.load is not None
                else "; and this box runs no load classifier (no truck_load section in its config)"
            )
            raise UpdateRefused("verify", f"this box runs no model named {name!r} ({runs})")
        if names.count(name) > 1:  # check-config refuses such a config; a box started anyway says so here
            slots = ", ".join(str(i) for i, n in enumerate(names) if n == name)
            raise UpdateRefused(
                "verify",
                f"this box runs {name!r} in detectors {slots}: give each its own 'name' in its config",
            )
        return names.index(name)

    def _announce(self, index: int) -> None:
        """Events and the retained status name the model that now runs."""
        self._pipeline.rules.set_model(index, self.slots[index].info.ref)
        self.announce()

    def models(self) -> list[ModelRef]:
        """What the box runs, as its status names it: the detectors, then the load classifier."""
        refs = [s.info.ref for s in self.slots]
        return refs + ([self.load.classifier.ref] if self.load is not None else [])

    def announce(self) -> None:
        """The retained status names the models that run now."""
        if self._pipeline.link is not None:
            self._pipeline.link.set_models(self.models())

    def _threads(self) -> int:
        from edge.pipeline import inference_plan

        return inference_plan(self._pipeline.config.inference_workers)[1]

    @staticmethod
    def _prune(folder: Path, *keep: Installed | None) -> None:
        """Keep the running version and the one before it; older ones go."""
        kept = {Path(k.path).resolve() for k in keep if k is not None}
        for path in folder.glob("*.onnx"):
            if path.resolve() not in kept:
                path.unlink(missing_ok=True)
                log.info("removed old model version %s", path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

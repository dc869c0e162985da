"""``update_config``: a new box configuration, checked like a model, applied by restarting the pipeline
in-process, rolled back if the pipeline does not start with it.

Why in-process: the process, Python, onnxruntime and the MQTT session stay up; only the
pipeline's parts are rebuilt (models loaded, source reopened), so the gap is the old
pipeline's clean stop plus the new one's start, about a second or two on a small box. Exiting
for systemd to restart would add the interpreter's start and ``RestartSec`` on top, and a
config that cannot start would leave the box down until someone looks.

Steps: ``verify`` the signature, ``download``, ``verify`` size and hash, ``validate`` (the
box's own :class:`edge.config.DeviceConfig`, same device id, updates still on, the MQTT
sink, every model file present), ``apply`` (the pipeline stops; :func:`run_box` starts it
with the new file), then ``done`` from the new pipeline, or ``failed`` and the previous
configuration again. The install state (``<configs_dir>/installed.json``) marks the new file
``pending`` before the restart: a box that dies while starting with it comes back on the
previous one. Relative paths in a new file are resolved against the folder of the box's
original configuration file, like that file's own.
"""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from edge.config import DeviceConfig, MqttSinkConfig, UpdatesConfig, load_config, resolve_paths
from edge.mqtt.commands import Replier
from edge.mqtt.outbox_sink import OutboxSink
from edge.updates.artifact import UpdateRefused, _safe, fetch_verified
from edge.updates.state import Installed, InstallState
from streetwatch.errors import ConfigError
from streetwatch.events import ConfigRef
from streetwatch.messages import UpdateConfigCommand
from streetwatch.yaml_model import invalid, read_yaml_mapping

if TYPE_CHECKING:
    from edge.pipeline import EdgePipeline, PipelineStats
    from edge.updates.models import ModelUpdater

log = logging.getLogger(__name__)

SLOT = "config"


def read_config(path: Path, base: Path) -> DeviceConfig:
    """Parse and validate a configuration file, relative paths against ``base``; ConfigError says why
    (the same messages as ``streetwatch edge check-config``, one line per wrong field)."""
    raw = read_yaml_mapping(path, "the configuration")
    try:
        config = DeviceConfig.model_validate(raw)
    except ValidationError as exc:
        raise invalid("the configuration", exc) from exc
    return resolve_paths(config, base)


class ConfigUpdater:
    """Handles ``update_config`` for a pipeline started by :func:`run_box`."""

    def __init__(self, pipeline: EdgePipeline, configured: DeviceConfig, updates: UpdatesConfig) -> None:
        self._pipeline = pipeline
        self._configured = configured
        self._updates = updates
        #: The folder relative paths are resolved against; set by run_box (None: config updates refused).
        self.base: Path | None = None
        #: What the pipeline must be restarted with once it stopped (set by an update).
        self.restart_with: tuple[DeviceConfig, Installed] | None = None
        self._thread: threading.Thread | None = None

    def handle(self, command: UpdateConfigCommand, replier: Replier, models: ModelUpdater) -> None:
        if not models.claim(command.command_id, replier):
            return
        self._thread = threading.Thread(
            target=self._run, args=(command, replier, models), name="config-update", daemon=True
        )
        self._thread.start()

    def _run(self, command: UpdateConfigCommand, replier: Replier, models: ModelUpdater) -> None:
        try:
            self._apply(command, replier, models)
            return  # the claim stays until the pipeline restarts
        except UpdateRefused as exc:
            log.error(
                "update_config %s %s refused at %s: %s", command.name, command.version, exc.step, exc.reason
            )
            replier.failed(exc.reason, step=exc.step)
        except Exception as exc:
            log.exception("update_config %s %s failed", command.name, command.version)
            replier.failed(f"unexpected error: {type(exc).__name__}: {exc}")
        models.release()

    def _apply(self, command: UpdateConfigCommand, replier: Replier, models: ModelUpdater) -> None:
        if self.base is None:
            raise UpdateRefused("validate", "this pipeline was not started by 'streetwatch edge run'")
        staged = fetch_verified("config", command, self._updates, models.release_key, replier.progress)
        try:
            config = read_config(staged, self.base)
            check_replacement(config, self._configured)
        except ConfigError as exc:
            staged.unlink(missing_ok=True)
            raise UpdateRefused("validate", str(exc)) from exc
        replier.progress("validate", 1.0)
        target = Path(self._updates.configs_dir) / f"{_safe(command.version)}-{command.sha256[:12]}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), target)
        installed = Installed(command.name, command.version, str(target), command.sha256, command.command_id)
        state = InstallState.load(self._updates.configs_dir)
        state.slot(SLOT).pending = installed  # a box that dies while starting with it comes back on the old
        state.save()
        replier.progress("apply")
        log.info("update_config %s %s: restarting the pipeline with it", command.name, command.version)
        self.restart_with = (config, installed)
        if isinstance(self._pipeline.sink, OutboxSink):
            # The next pipeline opens the same outbox at once and re-sends what is unacknowledged.
            self._pipeline.sink.drain_on_close_s = 0.0
        self._pipeline.stop()  # run_box starts the next pipeline with the new configuration


def check_replacement(new: DeviceConfig, old: DeviceConfig) -> None:
    """What a new configuration must keep so the box stays reachable and updatable."""
    if new.device_id != old.device_id:
        raise ConfigError(f"the configuration is for device {new.device_id!r}, this box is {old.device_id!r}")
    if not isinstance(new.sink, MqttSinkConfig):
        raise ConfigError("it has no mqtt sink: the box would stop reporting and taking commands")
    if new.updates is None:
        raise ConfigError("it turns updates off: the box could never be updated again")
    if old.updates is not None and (
        new.updates.configs_dir != old.updates.configs_dir or new.updates.models_dir != old.updates.models_dir
    ):
        raise ConfigError(
            "it moves updates.configs_dir or updates.models_dir: the install state would be lost"
        )
    missing = [d.model for d in new.detectors if not Path(d.model).is_file()]
    if missing:
        raise ConfigError(f"model files it names are not on this box: {', '.join(missing)}")


def run_box(config_path: Path, max_frames: int | None) -> tuple[EdgePipeline, PipelineStats]:
    """``streetwatch edge run``: the pipeline, restarted in-process when a configuration update arrives.

    On start an installed configuration replaces the file given (one still pending when the box
    stopped is rolled back). A pipeline that does not start with a new configuration is started
    again with the previous one, and the update is answered ``failed``. Events and status name the
    installed configuration the pipeline runs (none while it runs the file given).
    """
    from edge.pipeline import from_config

    base = config_path.resolve().parent
    config, installed = installed_configuration(load_config(config_path), base)
    previous, previous_installed = config, installed
    trial: Installed | None = None
    while True:
        running = trial or installed
        named = None if running is None else ConfigRef(name=running.name, version=running.version)
        try:
            pipeline = from_config(config, installed_as=named)
        except Exception as exc:
            if trial is None or previous.updates is None:
                raise
            log.error(
                "the pipeline did not start with configuration %s: %s; rolling back", trial.version, exc
            )
            _finish(
                previous.updates, trial, failure=f"the pipeline did not start with it ({exc}); rolled back"
            )
            config, installed, trial = previous, previous_installed, None
            continue
        updater = pipeline.updates.configs if pipeline.updates is not None else None
        if updater is not None:
            updater.base = base
        if trial is not None and config.updates is not None:
            _finish(config.updates, trial, failure=None)
            reply = pipeline.link.reply if pipeline.link is not None else None
            Replier(reply, trial.command_id, "update_config").done(step="apply")
            log.info("configuration %s %s applied", trial.name, trial.version)
            installed, trial = trial, None
        stats = pipeline.run(max_frames=max_frames, handle_signals=True)
        if updater is None or updater.restart_with is None:
            return pipeline, stats
        previous, previous_installed = config, installed
        config, trial = updater.restart_with


def _finish(updates: UpdatesConfig, trial: Installed, failure: str | None) -> None:
    state = InstallState.load(updates.configs_dir)
    slot = state.slot(SLOT)
    slot.pending = None
    if failure is None:
        slot.previous, slot.current = slot.current, trial
        keep = {Path(s.path).resolve() for s in (slot.current, slot.previous) if s is not None}
        for path in Path(updates.configs_dir).glob("*.yaml"):
            if path.resolve() not in keep:
                path.unlink(missing_ok=True)
    else:
        state.unreported.append({"command_id": trial.command_id, "type": "update_config", "reason": failure})
        Path(trial.path).unlink(missing_ok=True)
    state.save()


def installed_configuration(config: DeviceConfig, base: Path) -> tuple[DeviceConfig, Installed | None]:
    """The installed configuration and its release if there is one (a pending one is rolled back),
    else ``config`` and None."""
    updates = config.updates
    if updates is None:
        return config, None
    state = InstallState.load(updates.configs_dir)
    slot = state.models.get(SLOT)
    if slot is None:
        return config, None
    changed = False
    if slot.pending is not None:
        reason = f"rolled back: the box stopped while starting with configuration {slot.pending.version}"
        log.error("%s", reason)
        state.unreported.append(
            {"command_id": slot.pending.command_id, "type": "update_config", "reason": reason}
        )
        slot.pending = None
        changed = True
    while slot.current is not None:
        try:
            config = read_config(Path(slot.current.path), base)
            break
        except ConfigError as exc:
            log.error(
                "installed configuration %s is unusable (%s); using the one before", slot.current.path, exc
            )
            slot.current, slot.previous = slot.previous, None
            changed = True
    if changed:
        state.save()
    return config, slot.current

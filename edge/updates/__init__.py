"""Over-the-air updates of the box's models and configuration, with rollback (``update_model``,
``update_config``; docs/mqtt.md "commands").

    config = installed_config(config)          # before loading models: what is installed, crash rollback
    updates = BoxUpdates(pipeline, configured)  # wraps the detectors, registers the commands
    updates.note_frame(frame)                   # every processed frame (recent frames for probes)

``streetwatch edge run`` goes through :func:`edge.updates.configs.run_box`, which starts the
installed configuration and restarts the pipeline in-process when an ``update_config`` arrives.
The edge process never needs more than the standard library for this: urllib for downloads,
``cryptography`` (already a dependency) for the Ed25519 check.

Modules: ``download`` (resumable, capped, urllib), ``artifact`` (signature, size, hash),
``probe`` (try a model on recent frames), ``swappable`` (swap between frames, probation
health), ``state`` (the install state file), ``models`` and ``configs`` (the two commands);
for the truck load classifier, ``load_model`` (its ``update_model`` steps), ``classifier_probe``
(try it on the last trucks) and ``classifier_slot`` (swap between calls).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge.config import DeviceConfig
from edge.frames import Frame
from edge.updates.configs import ConfigUpdater
from edge.updates.models import ModelUpdater, apply_installed_models
from streetwatch.errors import ConfigError
from streetwatch.messages import UpdateConfigCommand, UpdateModelCommand

if TYPE_CHECKING:
    from edge.pipeline import EdgePipeline

__all__ = ["BoxUpdates", "installed_config"]


def installed_config(config: DeviceConfig) -> DeviceConfig:
    """The configuration with installed model versions in place of the configured files."""
    return apply_installed_models(config)


class BoxUpdates:
    """The update commands of one running pipeline."""

    def __init__(self, pipeline: EdgePipeline, configured: DeviceConfig) -> None:
        updates = configured.updates
        link = pipeline.link
        if updates is None or link is None:
            raise ConfigError("over-the-air updates need 'updates' in the config and the mqtt sink")
        self.models = ModelUpdater(pipeline, configured, updates)
        self.configs = ConfigUpdater(pipeline, configured, updates)
        link.commands.register(UpdateModelCommand, self.models.handle, own_replies=True)
        link.commands.register(
            UpdateConfigCommand,
            lambda cmd, replier: self.configs.handle(cmd, replier, self.models),
            own_replies=True,
        )
        self.models.report_unreported()
        link.release_commands()  # commands that arrived while the pipeline was starting are handled now

    def note_frame(self, frame: Frame) -> None:
        self.models.note_frame(frame)

    def close(self) -> None:
        self.models.close()

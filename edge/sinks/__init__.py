"""Event sinks: where the pipeline's events go (a JSON-lines file; MQTT through an outbox).

``open_sink(config)`` builds the sink named by ``config.sink.kind`` and, for a sink that
talks to a server, the device link it rides on (status, telemetry, commands). A sink kind
is a factory ``fn(config: DeviceConfig, models: Sequence[ModelRef]) -> OpenedSink``
registered in :data:`SINK_FACTORIES` as ``"module:function"``, imported only when used, so
an edge image without paho-mqtt still runs the file sink.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import NamedTuple, cast

from edge.config import DeviceConfig, JsonlSinkConfig
from edge.interfaces import DeviceLink, EventSink
from edge.sinks.jsonl import JsonlSink
from streetwatch.errors import ConfigError
from streetwatch.events import ModelRef

__all__ = [
    "SINK_FACTORIES", "JsonlSink", "OpenedSink", "SinkFactory",
    "open_jsonl_sink", "open_mqtt_sink", "open_sink",
]  # fmt: skip


class OpenedSink(NamedTuple):
    """A sink ready for ``emit`` and the device link it rides on (None: a sink without a server)."""

    sink: EventSink
    link: DeviceLink | None = None


SinkFactory = Callable[[DeviceConfig, Sequence[ModelRef]], OpenedSink]

#: sink kind -> "module:function" of a factory taking the whole DeviceConfig and the models.
SINK_FACTORIES: dict[str, str] = {
    "jsonl": "edge.sinks:open_jsonl_sink",
    "mqtt": "edge.sinks:open_mqtt_sink",
}


def open_jsonl_sink(config: DeviceConfig, models: Sequence[ModelRef] = ()) -> OpenedSink:
    if not isinstance(config.sink, JsonlSinkConfig):
        raise ConfigError("open_jsonl_sink needs a sink of kind 'jsonl'")
    return OpenedSink(JsonlSink(config.sink.path))


def open_mqtt_sink(config: DeviceConfig, models: Sequence[ModelRef] = ()) -> OpenedSink:
    from edge.config import MqttSinkConfig
    from edge.mqtt import MqttLink, OutboxSink

    if not isinstance(config.sink, MqttSinkConfig):
        raise ConfigError("open_mqtt_sink needs a sink of kind 'mqtt'")
    # With updates on, commands wait until their handlers are registered (edge.updates.BoxUpdates):
    # an update_model queued while the box was offline must not be refused as unknown at start.
    hold = config.updates is not None
    link = MqttLink(config.sink, device_id=config.device_id, models=models, hold_commands=hold, starting=True)
    try:
        return OpenedSink(OutboxSink(config.sink, link), link)
    except BaseException:
        link.close()
        raise


def open_sink(config: DeviceConfig, models: Sequence[ModelRef] = ()) -> OpenedSink:
    """The sink ``config.sink`` describes, ready for ``emit``, and its device link if it has one;
    close the sink, then the link, when done.

    ``models`` are the detectors' names and versions (the link reports them in its status).
    """
    kind = config.sink.kind
    target = SINK_FACTORIES.get(kind)
    if target is None:
        raise ConfigError(f"unknown sink kind {kind!r}; known: {', '.join(sorted(SINK_FACTORIES))}")
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigError(
                f"sink kind {kind!r} is not available in this build ({module_name} is missing)"
            ) from exc
        raise
    factory = cast(SinkFactory, getattr(module, function))
    return factory(config, models)

"""Event sinks: where the pipeline's events go (a JSON-lines file; MQTT through an outbox).

``open_sink(config)`` builds the sink named by ``config.sink.kind``. A sink kind
is a factory ``fn(config: DeviceConfig, models: Sequence[ModelRef]) -> EventSink``
registered in
:data:`SINK_FACTORIES` as ``"module:function"``, imported only when used, so an
edge image without paho-mqtt still runs the file sink.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import cast

from edge.config import DeviceConfig
from edge.interfaces import EventSink
from edge.sinks.jsonl import JsonlSink
from streetwatch.errors import ConfigError
from streetwatch.events import ModelRef

__all__ = ["SINK_FACTORIES", "JsonlSink", "SinkFactory", "open_jsonl_sink", "open_mqtt_sink", "open_sink"]

SinkFactory = Callable[[DeviceConfig, Sequence[ModelRef]], EventSink]

#: sink kind -> "module:function" of a factory taking the whole DeviceConfig and the models.
SINK_FACTORIES: dict[str, str] = {
    "jsonl": "edge.sinks:open_jsonl_sink",
    "mqtt": "edge.sinks:open_mqtt_sink",
}


def open_jsonl_sink(config: DeviceConfig, models: Sequence[ModelRef] = ()) -> EventSink:
    path = getattr(config.sink, "path", None)
    if not isinstance(path, str):
        raise ConfigError("sink.kind 'jsonl' needs sink.path")
    return JsonlSink(path)


def open_mqtt_sink(config: DeviceConfig, models: Sequence[ModelRef] = ()) -> EventSink:
    from edge.config import MqttSinkConfig
    from edge.mqtt import MqttSink

    if not isinstance(config.sink, MqttSinkConfig):
        raise ConfigError("open_mqtt_sink needs a sink of kind 'mqtt'")
    # With updates on, commands wait until their handlers are registered (edge.updates.BoxUpdates):
    # an update_model queued while the box was offline must not be refused as unknown at start.
    hold = config.updates is not None
    return MqttSink(config.sink, device_id=config.device_id, models=models, hold_commands=hold)


def open_sink(config: DeviceConfig, models: Sequence[ModelRef] = ()) -> EventSink:
    """The sink ``config.sink`` describes, ready for ``emit``; close it when done.

    ``models`` are the detectors' names and versions (a sink may report them, e.g. in telemetry).
    """
    kind = str(getattr(config.sink, "kind", "jsonl"))
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

"""MQTT delivery from the edge box: the outbox-backed event sink, status, telemetry, commands.

Public API: :class:`MqttSink` (an ``EventSink``), its ``telemetry`` recorder and its
``commands`` dispatcher. Topics and payloads: ``docs/mqtt.md``.
"""

from edge.mqtt.commands import CommandDispatcher
from edge.mqtt.sink import MqttSink
from edge.mqtt.telemetry import TelemetryRecorder

__all__ = ["CommandDispatcher", "MqttSink", "TelemetryRecorder"]

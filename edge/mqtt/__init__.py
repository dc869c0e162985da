"""MQTT delivery from the edge box: the device link (status, telemetry, commands) and the outbox sink.

Public API: :class:`MqttLink` (the box's :class:`edge.interfaces.DeviceLink`: connection, retained
status, its ``telemetry`` recorder and its ``commands`` dispatcher) and :class:`OutboxSink` (an
``EventSink`` that rides on a link: events through the disk outbox). Topics and payloads:
``docs/mqtt.md``.
"""

from edge.mqtt.commands import CommandDispatcher
from edge.mqtt.link import MqttLink
from edge.mqtt.outbox_sink import OutboxSink
from edge.mqtt.telemetry import TelemetryRecorder

__all__ = ["CommandDispatcher", "MqttLink", "OutboxSink", "TelemetryRecorder"]

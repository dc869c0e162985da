"""The MQTT event sink: events and evidence go to the disk outbox, a thread sends them.

    sink = MqttSink(config.sink, device_id=config.device_id, models=[d.info.ref for d in detectors])
    ...
    sink.telemetry.note_frame()                      # every processed frame
    sink.telemetry.note_position(position, at)       # every GPS fix
    sink.emit(event, evidence)                       # returns once the outbox has committed
    ...
    sink.close()

``emit`` only writes to SQLite (one transaction per event with its evidence, evidence
first); the publisher thread drains the outbox, so a dead link never slows the
detection loop. A row leaves the outbox only when the server acknowledges that it
stored it (``StoredAck`` on ``.../acks``, to which the box subscribes); what stays
unacknowledged is sent again (``edge.mqtt.publisher``). When the disk is full the
outbox drops older evidence to store the event; if it still cannot, ``emit`` logs the
:class:`StorageError` (counted as ``storage_error`` in telemetry, persisted) and
returns: the loop keeps running and later events are stored again once space is back.

Threads: the paho network loop (the only one writing to the socket), the outbox
publisher, a reporter (telemetry, age limits) and a command worker (slow handlers
never block the network loop; a failing command never ends it).
"""

from __future__ import annotations

import collections
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from edge.config import MqttSinkConfig
from edge.interfaces import Evidence
from edge.mqtt.commands import CommandDispatcher, ReplyState
from edge.mqtt.connection import BrokerSettings, MqttConnection
from edge.mqtt.publisher import OutboxPublisher
from edge.mqtt.telemetry import TelemetryRecorder
from edge.mqtt.thermal import read_temperatures
from edge.outbox import Depth, Outbox, OutboxLimits, OutboxMessage
from edge.tegrastats import TegrastatsReader
from streetwatch import __version__
from streetwatch.errors import PayloadError, StorageError
from streetwatch.events import ModelRef, ViolationEvent
from streetwatch.messages import (
    CommandReply,
    OutboxDepth,
    PublishStatusCommand,
    SendTelemetryCommand,
    StartupProgress,
    StatusMessage,
    TelemetryMessage,
)
from streetwatch.topics import (
    acks_topic,
    command_replies_topic,
    commands_topic,
    events_topic,
    evidence_topic,
    status_topic,
    telemetry_topic,
)

log = logging.getLogger(__name__)

#: Evidence hashes enqueued recently; an 'update' event that repeats the best frame does not resend it.
RECENT_EVIDENCE = 1024
#: Commands waiting for the worker; more are dropped with a warning (the server can resend).
COMMAND_QUEUE = 64
#: What a starting box does with a model (``StartupProgress.step``).
StartupStep = Literal["loading", "building_tensorrt_engine"]
#: Seconds between repeated "cannot store" log lines while the disk stays full.
STORAGE_LOG_EVERY_S = 60.0


class MqttSink:
    """An :class:`edge.interfaces.EventSink` that delivers over MQTT through a disk outbox."""

    def __init__(
        self,
        config: MqttSinkConfig,
        *,
        device_id: str,
        models: Sequence[ModelRef] = (),
        software_version: str = __version__,
        hold_commands: bool = False,
    ) -> None:
        self.config = config
        self.device_id = device_id
        self.software_version = software_version
        self._models = list(models)
        self._started = time.monotonic()
        self._closed = False
        #: Seconds ``close()`` waits for the server's acks (0: the pipeline restarts at once, config update).
        self.drain_on_close_s = 2.0
        # GPU load, memory and power on a Jetson; None elsewhere (no tegrastats binary).
        self._tegrastats = TegrastatsReader.start_if_available()
        self._recent_evidence: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._emit_lock = threading.Lock()
        self._last_storage_log = -STORAGE_LOG_EVERY_S
        self._events_topic = events_topic(device_id)
        self._acks_topic = acks_topic(device_id)
        settings = BrokerSettings.from_config(config, device_id)  # a bad password file fails here, first

        limits = OutboxLimits(
            max_bytes=config.outbox.max_bytes,
            max_age_s=config.outbox.max_age_s,
            evidence_max_age_s=config.outbox.evidence_max_age_s,
            reserve_bytes=config.outbox.reserve_bytes,
        )
        self.outbox = Outbox(config.outbox.path, limits)
        self.outbox_path = Path(config.outbox.path)
        #: What the server had not acknowledged when the sink closed (None while open).
        self.left_in_outbox: Depth | None = None
        self._ever_connected = False
        self.telemetry = TelemetryRecorder()
        # What the box prepares before its first frame (None once running, or for a bare sink).
        self._startup_lock = threading.Lock()
        self._startup: tuple[str, StartupStep, int, int, float] | None = None
        self._phase: Literal["starting", "running"] | None = None
        self.commands = CommandDispatcher(reply=self.reply)
        self.commands.register(SendTelemetryCommand, lambda _cmd: self.send_telemetry_now())
        self.commands.register(PublishStatusCommand, lambda _cmd: self._publish_status())

        self._command_queue: queue.Queue[bytes | None] = queue.Queue(maxsize=COMMAND_QUEUE)
        # hold_commands: received commands wait (queued) until release_commands(), once every
        # handler is registered; the queue bound still applies.
        self._commands_released = threading.Event()
        if not hold_commands:
            self._commands_released.set()
        self._report_now = threading.Event()
        self._stopping = threading.Event()
        self._connection = MqttConnection(
            settings,
            will=(status_topic(device_id), self._status("offline").to_json()),
            subscriptions=(commands_topic(device_id), acks_topic(device_id)),
            on_connected=self._on_connected,
            on_message=self._on_message,
            on_ack=lambda mid, reason: self._publisher.on_ack(mid, reason),
        )
        self._publisher = OutboxPublisher(
            self.outbox,
            self._connection,
            refused_min_s=config.reconnect_min_s,
            refused_max_s=config.reconnect_max_s,
            puback_timeout_s=max(30.0, 2.0 * config.keepalive_s),
            stored_ack_timeout_s=config.ack_timeout_s,
            stored_ack_timeout_max_s=config.ack_timeout_max_s,
        )
        self._threads = [
            threading.Thread(target=self._report_loop, name="mqtt-reporter", daemon=True),
            threading.Thread(target=self._command_loop, name="mqtt-commands", daemon=True),
        ]
        self._publisher.start()
        self._connection.start()
        for thread in self._threads:
            thread.start()

    # -- EventSink ---------------------------------------------------------------------------

    def emit(self, event: ViolationEvent, evidence: Evidence | None) -> None:
        """Commit the event (and its evidence, first) to the outbox; sending happens later."""
        if self._closed:
            raise StorageError(
                f"the MQTT sink of {self.device_id} is closed; event {event.event_id} not stored"
            )
        if event.device_id != self.device_id:
            raise PayloadError(
                f"event {event.event_id} names device {event.device_id!r} but this sink publishes as "
                f"{self.device_id!r}; the server would reject it (check device_id in the config)"
            )
        with self._emit_lock:
            messages = self._evidence_messages(event, evidence)
            messages.append(OutboxMessage("event", self._events_topic, event.to_json(), str(event.event_id)))
            try:
                self.outbox.put(messages)
                self._remember_evidence(messages)
            except StorageError as exc:
                now = time.monotonic()
                if now - self._last_storage_log >= STORAGE_LOG_EVERY_S:
                    self._last_storage_log = now
                    log.error("%s (event %s lost; the pipeline continues)", exc, event.event_id)
                return
        self._publisher.notify()

    def close(self, drain_timeout_s: float | None = None) -> None:
        """Give the server up to ``drain_timeout_s`` (default ``drain_on_close_s``) to acknowledge
        everything if the link is up, then say offline and disconnect. Whatever is left stays in the
        outbox for the next start."""
        if self._closed:
            return
        self._closed = True
        if drain_timeout_s is None:
            drain_timeout_s = self.drain_on_close_s
        if drain_timeout_s > 0 and self.connected:
            self._publisher.wait_idle(drain_timeout_s)
        self._stopping.set()
        self._report_now.set()
        self._command_queue.put(None)
        for thread in self._threads:
            thread.join(5.0)
        self._publisher.stop()
        if (
            not self._connection.publish_and_wait(
                status_topic(self.device_id), self._status("offline").to_json(), retain=True, timeout=2.0
            )
            and self._ever_connected
        ):
            log.info("could not say 'offline' before closing; the broker will send the last will")
        self._connection.stop()
        self.left_in_outbox = self.outbox.depth()
        self.outbox.close()
        if self._tegrastats is not None:
            self._tegrastats.stop()

    # -- for the pipeline, the demo and tests -------------------------------------------------

    def set_models(self, models: Sequence[ModelRef]) -> None:
        """The detectors changed (loaded later, or updated): republish the retained status."""
        self._models = list(models)
        self._publish_status()

    def send_telemetry_now(self) -> None:
        self._report_now.set()

    def starting(self, model: str, step: StartupStep, number: int = 1, total: int = 1) -> None:
        """The box prepares ``model`` before its first frame: status says starting and telemetry
        reports the step every ``startup_report_interval_s`` until :meth:`running`. Thread-safe."""
        with self._startup_lock:
            current = self._startup
            same = current is not None and current[:2] == (model, step)
            began = current[4] if same and current is not None else time.monotonic()
            self._startup = (model, step, number, total, began)
            announce = self._phase != "starting"
            self._phase = "starting"
        if announce:
            self._publish_status()
        if not same:
            self._report_now.set()  # a new step goes out at once, not at the end of a long interval

    def running(self) -> None:
        """Models are ready: status says running and telemetry is back to its normal interval."""
        with self._startup_lock:
            self._startup = None
            changed = self._phase != "running"
            self._phase = "running"
        if changed:
            self._publish_status()

    def release_commands(self) -> None:
        """Start handling commands (a sink opened with ``hold_commands``): every handler is registered."""
        self._commands_released.set()

    def reply(
        self,
        command_id: str,
        type: str,
        state: ReplyState,
        *,
        step: str | None = None,
        progress: float | None = None,
        reason: str | None = None,
    ) -> None:
        """Answer a command on ``.../commands/reply`` (QoS 1; paho keeps it through a short outage)."""
        message = CommandReply(
            command_id=command_id,
            device_id=self.device_id,
            type=type,
            state=state,
            step=step,
            progress=progress,
            reason=reason,
            at=datetime.now(timezone.utc),
        )
        log.info(
            "command %r (%s): %s%s%s",
            command_id,
            type,
            state,
            f" [{step}]" if step else "",
            f": {reason}" if reason else "",
        )
        if self._closed and self._stopping.is_set():
            return
        if self._connection.publish(command_replies_topic(self.device_id), message.to_json()) is None:
            log.warning("reply %s to command %r could not be handed to the MQTT client", state, command_id)

    def wait_until_delivered(self, timeout: float) -> bool:
        """True once the server acknowledged every message as stored, so the outbox is empty
        (False after ``timeout``)."""
        return self._publisher.wait_idle(timeout)

    @property
    def connected(self) -> bool:
        return self._connection.connected.is_set()

    def telemetry_message(self) -> TelemetryMessage:
        """Build a report (and start a new period); public so tools can show it without a broker."""
        snap = self.telemetry.snapshot()
        depth = self.outbox.depth()
        dropped = self.outbox.dropped()
        resent = self.outbox.delivery().get("resent", 0)
        if snap.coverage_overflow:
            dropped["coverage_points"] = snap.coverage_overflow
        temps = read_temperatures()
        jetson = self._tegrastats.latest() if self._tegrastats is not None else None
        oldest = (
            datetime.fromtimestamp(depth.oldest_created_at, timezone.utc)
            if depth.oldest_created_at is not None
            else None
        )
        return TelemetryMessage(
            device_id=self.device_id,
            at=datetime.now(timezone.utc),
            period_s=round(snap.period_s, 3),
            uptime_s=round(time.monotonic() - self._started, 3),
            frames=snap.frames,
            fps=round(snap.frames / snap.period_s, 3) if snap.period_s > 0 else 0.0,
            coverage=snap.coverage,
            outbox=OutboxDepth(
                events=depth.events,
                evidence=depth.evidence,
                bytes=depth.bytes,
                oldest_at=oldest,
                sent_events=depth.sent_events,
                sent_evidence=depth.sent_evidence,
                resent=resent,
            ),
            dropped=dropped,
            cpu_temp_c=temps.cpu_c,
            gpu_temp_c=temps.gpu_c,
            gpu_load_pct=jetson.gpu_load_pct if jetson else None,
            cpu_load_pct=jetson.cpu_mean_load_pct if jetson else None,
            ram_used_mb=jetson.ram_used_mb if jetson else None,
            ram_total_mb=jetson.ram_total_mb if jetson else None,
            power_mw=jetson.power_mw if jetson else None,
            startup=self._startup_progress(),
            truck_load=snap.truck_load,
        )

    def _startup_progress(self) -> StartupProgress | None:
        with self._startup_lock:
            current = self._startup
        if current is None:
            return None
        model, step, number, total, began = current
        return StartupProgress(
            model=model[:128] or "model",
            step=step,
            elapsed_s=round(time.monotonic() - began, 1),
            number=number,
            total=max(total, number),
        )

    # -- internals ------------------------------------------------------------------------------

    def _evidence_messages(self, event: ViolationEvent, evidence: Evidence | None) -> list[OutboxMessage]:
        if evidence is None:
            return []
        ref = evidence.ref
        images: list[tuple[str, bytes, str]] = [
            ("frame", evidence.frame_jpeg, ref.frame_sha256),
            ("crop", evidence.crop_jpeg, ref.crop_sha256),
        ]
        if evidence.clean_jpeg is not None and ref.clean_sha256 is not None:
            images.append(("clean frame", evidence.clean_jpeg, ref.clean_sha256))
        messages = []
        for name, data, expected in images:
            digest = hashlib.sha256(data).hexdigest()
            if digest != expected:
                # The server checks the hash against the topic; a wrong one would be refused forever.
                log.error(
                    "event %s: the %s JPEG hashes to %s but the event says %s; image not sent",
                    event.event_id,
                    name,
                    digest[:12],
                    expected[:12],
                )
                continue
            if digest in self._recent_evidence:
                continue
            messages.append(OutboxMessage("evidence", evidence_topic(self.device_id, digest), data, digest))
        return messages

    def _remember_evidence(self, messages: list[OutboxMessage]) -> None:
        """Only images that are safely stored count as sent-once (a failed write must not hide them)."""
        for m in messages:
            if m.kind == "evidence":
                self._recent_evidence[m.topic.rsplit("/", 1)[1]] = None
        while len(self._recent_evidence) > RECENT_EVIDENCE:
            self._recent_evidence.popitem(last=False)

    def _status(self, state: str) -> StatusMessage:
        return StatusMessage(
            state="online" if state == "online" else "offline",
            device_id=self.device_id,
            software_version=self.software_version,
            models=self._models,
            at=datetime.now(timezone.utc),
            phase=self._phase if state == "online" else None,
        )

    def _publish_status(self) -> None:
        if self._connection.connected.is_set():
            self._connection.publish(
                status_topic(self.device_id), self._status("online").to_json(), retain=True
            )

    def _on_connected(self, session_present: bool) -> None:
        self._ever_connected = True
        self._publish_status()
        self._publisher.on_connected()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self._acks_topic:
            self._publisher.on_stored_ack(payload)
            return
        try:
            self._command_queue.put_nowait(payload)
        except queue.Full:
            log.warning("command queue full (%d waiting); a command on %s was dropped", COMMAND_QUEUE, topic)

    def _command_loop(self) -> None:
        while not self._commands_released.wait(0.5):
            if self._stopping.is_set():
                return
        while True:
            payload = self._command_queue.get()
            if payload is None:
                return
            try:
                self.commands.dispatch(payload)
            except Exception:  # whatever a command does, the thread lives on for the next one
                log.exception("a command (%d bytes) failed; ignored", len(payload))

    def _report_loop(self) -> None:
        self._expire()
        while not self._stopping.is_set():
            # While starting, report often: a TensorRT build takes minutes and must not look like a hang.
            starting = self._startup is not None
            interval = self.config.startup_report_interval_s if starting else self.config.telemetry_interval_s
            self._report_now.wait(interval)
            self._report_now.clear()
            if self._stopping.is_set():
                return
            self._expire()
            if not self._connection.connected.is_set():
                continue  # the track keeps growing and goes out with the next report
            snap_message = self.telemetry_message()
            mid = self._connection.publish(telemetry_topic(self.device_id), snap_message.to_json())
            if mid is None:
                log.warning("telemetry report could not be handed to the MQTT client; it is skipped")

    def _expire(self) -> None:
        try:
            self.outbox.expire()
        except StorageError as exc:
            log.error("%s", exc)

"""The box's MQTT link to the server: connection, retained status, telemetry and commands.

    link = MqttLink(config.sink, device_id=config.device_id)  # connects in the background
    sink = OutboxSink(config.sink, link)              # events ride on it (edge.mqtt.outbox_sink)
    link.set_models([d.info.ref for d in detectors])  # the retained status names them
    link.telemetry.note_frame()                       # every processed frame
    link.telemetry.note_position(position, at)        # every GPS fix
    ...
    sink.close()
    link.close()                                      # last telemetry, says offline, disconnects

It is the :class:`edge.interfaces.DeviceLink` of a box with an MQTT sink. The status
(``.../status``, retained, and the last will) says online or offline, starting or running,
and which models run; telemetry goes out every ``telemetry_interval_s`` (more often while
starting) with the outbox's figures; commands are answered on ``.../commands/reply``. The
server's ``StoredAck`` messages arrive here too and go to the outbox the link carries.

Threads: the paho network loop (the only one writing to the socket), a reporter
(telemetry, the outbox's age limits) and a command worker (slow handlers never block the
network loop; a failing command never ends it).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from edge.config import MqttSinkConfig
from edge.interfaces import StartupStep
from edge.mqtt.commands import CommandDispatcher, ReplyState
from edge.mqtt.connection import BrokerSettings, MqttConnection
from edge.mqtt.publisher import OutboxPublisher
from edge.mqtt.refusal_report import RefusalReporter
from edge.mqtt.telemetry import TelemetryRecorder
from edge.mqtt.thermal import read_temperatures
from edge.outbox import Depth, Outbox
from edge.tegrastats import TegrastatsReader
from streetwatch import __version__
from streetwatch.errors import StorageError
from streetwatch.events import ConfigRef, ModelRef
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
    status_topic,
    telemetry_topic,
)

log = logging.getLogger(__name__)

#: Commands waiting for the worker; more are dropped with a warning (the server can resend).
COMMAND_QUEUE = 64
#: StoredAcks kept while no outbox is carried yet (the broker hands queued ones over at connect).
EARLY_ACKS = 1024
#: How long closing waits for the broker's PUBACK of each last message (telemetry, then the
#: offline status): a broker that is gone must not hold up a box's shutdown.
CLOSE_PUBLISH_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class OutboxFigures:
    """What telemetry says about the outbox carried."""

    depth: Depth
    dropped: dict[str, int]
    resent: int


class MqttLink:
    """An :class:`edge.interfaces.DeviceLink` over MQTT; carries an outbox (:meth:`carry`)."""

    def __init__(
        self,
        config: MqttSinkConfig,
        *,
        device_id: str,
        models: Sequence[ModelRef] = (),
        software_version: str = __version__,
        hold_commands: bool = False,
        starting: bool = False,
    ) -> None:
        """``starting``: a box opening its link before its models load; the status says ``phase:
        starting`` from its first message until :meth:`running`. ``hold_commands``: see
        :meth:`release_commands`."""
        self.config = config
        self.device_id = device_id
        self.software_version = software_version
        self._models = list(models)
        self._config: ConfigRef | None = None  # the configuration installed over the air, if any
        self._started = time.monotonic()
        self._closed = False
        self._acks_topic = acks_topic(device_id)
        settings = BrokerSettings.from_config(config, device_id)  # a bad password file fails here, first
        # GPU load, memory and power on a Jetson; None elsewhere (no tegrastats binary).
        self._tegrastats = TegrastatsReader.start_if_available()
        # The outbox this link delivers (set by the OutboxSink riding on it, cleared when it closes).
        self._carry_lock = threading.Lock()
        self._outbox: Outbox | None = None
        self._publisher: OutboxPublisher | None = None
        self._early_acks: list[bytes] = []
        # The figures of the outbox as it was dropped: the last telemetry (at close) reports them.
        self._last_figures: OutboxFigures | None = None
        self._ever_carried = False
        self._ever_connected = False
        self.telemetry = TelemetryRecorder()
        # What the box prepares before its first frame (None once running, or for a bare link).
        self._startup_lock = threading.Lock()
        self._startup: tuple[str, StartupStep, int, int, float] | None = None
        self._phase: Literal["starting", "running"] | None = "starting" if starting else None
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
        # Refused by the broker, the box can still say so over HTTP (sink.refusal_report).
        self._refusals = (
            RefusalReporter(config.refusal_report, device_id) if config.refusal_report is not None else None
        )
        self.connection = MqttConnection(
            settings,
            will=(status_topic(device_id), self._status("offline").to_json()),
            subscriptions=(commands_topic(device_id), acks_topic(device_id)),
            on_connected=self._on_connected,
            on_message=self._on_message,
            on_ack=self._on_ack,
            on_refused=self._refusals.refused if self._refusals is not None else None,
        )
        self._threads = [
            threading.Thread(target=self._report_loop, name="mqtt-reporter", daemon=True),
            threading.Thread(target=self._command_loop, name="mqtt-commands", daemon=True),
        ]
        self.connection.start()
        for thread in self._threads:
            thread.start()

    def carry(self, outbox: Outbox, publisher: OutboxPublisher) -> None:
        """Deliver ``outbox`` (the OutboxSink riding on this link): hand its publisher the broker's
        PUBACKs and the server's StoredAcks, report its figures in telemetry, apply its age limits."""
        with self._carry_lock:
            self._outbox, self._publisher = outbox, publisher
            self._ever_carried = True
            early, self._early_acks = self._early_acks, []
        for payload in early:
            publisher.on_stored_ack(payload)
        if self.connected:
            publisher.on_connected()

    def drop_carried(self) -> None:
        """The outbox is closing: stop handing it acks and reading its figures (those of now
        are kept for the last telemetry, sent when the link closes)."""
        with self._carry_lock:
            outbox, self._outbox, self._publisher = self._outbox, None, None
        if outbox is not None:
            try:
                self._last_figures = _figures_of(outbox)
            except StorageError as exc:
                log.error("%s (the last telemetry reports no outbox figures)", exc)

    def close(self) -> None:
        """Send a last telemetry report, say offline and disconnect (the outbox sink riding on this
        link closes first). Each message waits at most ``CLOSE_PUBLISH_TIMEOUT_S`` for the broker."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._report_now.set()
        self._command_queue.put(None)
        for thread in self._threads:
            thread.join(5.0)
        self._send_last_telemetry()
        if (
            not self.connection.publish_and_wait(
                status_topic(self.device_id),
                self._status("offline").to_json(),
                retain=True,
                timeout=CLOSE_PUBLISH_TIMEOUT_S,
            )
            and self._ever_connected
        ):
            log.info("could not say 'offline' before closing; the broker will send the last will")
        self.connection.stop()
        if self._refusals is not None:
            self._refusals.stop()
        if self._tegrastats is not None:
            self._tegrastats.stop()

    # -- status, startup, commands: for the pipeline, the updates, the demo and tests -------------

    def set_models(self, models: Sequence[ModelRef]) -> None:
        """The models changed (loaded later, or updated): republish the retained status."""
        self._models = list(models)
        self._publish_status()

    def set_config(self, config: ConfigRef | None) -> None:
        """The configuration installed over the air that the pipeline runs (None: the box's own file),
        named by the next status (the pipeline names its models right after)."""
        self._config = config

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
        """Start handling commands (a link opened with ``hold_commands``): every handler is registered."""
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
        if self._stopping.is_set():
            return
        if self.connection.publish(command_replies_topic(self.device_id), message.to_json()) is None:
            log.warning("reply %s to command %r could not be handed to the MQTT client", state, command_id)

    @property
    def connected(self) -> bool:
        return self.connection.connected.is_set()

    def telemetry_message(self) -> TelemetryMessage:
        """Build a report (and start a new period); public so tools can show it without a broker.

        The outbox figures are those of the outbox carried (zero when none is)."""
        with self._carry_lock:
            outbox = self._outbox
        # Read before the snapshot: an unreadable outbox must not cost the period's frames.
        figures = _figures_of(outbox) if outbox is not None else self._last_figures
        snap = self.telemetry.snapshot()
        depth = figures.depth if figures is not None else Depth(0, 0, 0, None, 0, 0)
        dropped = dict(figures.dropped) if figures is not None else {}
        resent = figures.resent if figures is not None else 0
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

    def _send_last_telemetry(self) -> None:
        """The frames and counts since the last periodic report, so the server's last word on a box
        that stops is not up to ``telemetry_interval_s`` old. Never raises: a broker that is gone
        costs at most ``CLOSE_PUBLISH_TIMEOUT_S`` and a warning."""
        if not self._ever_carried:
            return  # a bare link (no outbox ever) sends no telemetry, like its reporter
        try:
            message = self.telemetry_message()
            topic, payload = telemetry_topic(self.device_id), message.to_json()
            sent = self.connection.publish_and_wait(
                topic, payload, retain=False, timeout=CLOSE_PUBLISH_TIMEOUT_S
            )
        except Exception as exc:  # shutdown goes on whatever the last report hits
            log.warning("the last telemetry report could not be built or sent: %s", exc)
            return
        if not sent:
            log.warning(
                "the last telemetry report (%d frames) did not reach the broker within %.0f s; it is lost",
                message.frames,
                CLOSE_PUBLISH_TIMEOUT_S,
            )

    def _status(self, state: str) -> StatusMessage:
        return StatusMessage(
            state="online" if state == "online" else "offline",
            device_id=self.device_id,
            software_version=self.software_version,
            models=self._models,
            config=self._config,
            at=datetime.now(timezone.utc),
            phase=self._phase if state == "online" else None,
        )

    def _publish_status(self) -> None:
        if self.connection.connected.is_set():
            self.connection.publish(
                status_topic(self.device_id), self._status("online").to_json(), retain=True
            )

    def _on_connected(self, session_present: bool) -> None:
        self._ever_connected = True
        if self._refusals is not None:
            self._refusals.connected()
        self._publish_status()
        with self._carry_lock:
            publisher = self._publisher
        if publisher is not None:
            publisher.on_connected()

    def _on_ack(self, mid: int, reason: int) -> None:
        with self._carry_lock:
            publisher = self._publisher
        if publisher is not None:  # else a status or telemetry publish: nothing waits for it
            publisher.on_ack(mid, reason)

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == self._acks_topic:
            with self._carry_lock:
                publisher = self._publisher
                if publisher is None and len(self._early_acks) < EARLY_ACKS:
                    self._early_acks.append(payload)
            if publisher is not None:
                publisher.on_stored_ack(payload)
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
            if not self.connection.connected.is_set():
                continue  # the track keeps growing and goes out with the next report
            with self._carry_lock:
                carrying = self._outbox is not None
            if not carrying:
                continue  # the outbox is closing: its figures are gone, the link is about to close
            snap_message = self.telemetry_message()
            mid = self.connection.publish(telemetry_topic(self.device_id), snap_message.to_json())
            if mid is None:
                log.warning("telemetry report could not be handed to the MQTT client; it is skipped")

    def _expire(self) -> None:
        with self._carry_lock:
            outbox = self._outbox
        if outbox is None:
            return
        try:
            outbox.expire()
        except StorageError as exc:
            log.error("%s", exc)


def _figures_of(outbox: Outbox) -> OutboxFigures:
    return OutboxFigures(
        depth=outbox.depth(), dropped=outbox.dropped(), resent=outbox.delivery().get("resent", 0)
    )

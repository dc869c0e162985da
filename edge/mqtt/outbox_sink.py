"""The MQTT event sink: events and evidence go to the disk outbox, a thread sends them over the link.

    link = MqttLink(config.sink, device_id=config.device_id)  # edge.mqtt.link
    sink = OutboxSink(config.sink, link)
    sink.emit(event, evidence)                       # returns once the outbox has committed
    ...
    sink.close()                                     # then link.close()
    sink.pending()                                   # what waits for the server's acknowledgement

``emit`` only writes to SQLite (one transaction per event with its evidence, evidence
first); the publisher thread drains the outbox, so a dead link never slows the
detection loop. A row leaves the outbox only when the server acknowledges that it
stored it (``StoredAck`` on ``.../acks``, which the link receives and hands over); what
stays unacknowledged is sent again (``edge.mqtt.publisher``). When the disk is full the
outbox drops older evidence to store the event; if it still cannot, ``emit`` logs the
:class:`StorageError` (counted as ``storage_error`` in telemetry, persisted) and
returns: the loop keeps running and later events are stored again once space is back.

A tool that only wants the outbox delivered (the demo, benchmarks, tests) opens both at
once with :meth:`OutboxSink.open`; that sink closes its link when it closes.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from edge.config import MqttSinkConfig
from edge.interfaces import Evidence, Pending
from edge.mqtt.link import MqttLink
from edge.mqtt.publisher import OutboxPublisher
from edge.outbox import Depth, Outbox, OutboxLimits, OutboxMessage
from streetwatch.errors import PayloadError, StorageError
from streetwatch.events import ModelRef, ViolationEvent
from streetwatch.topics import events_topic, evidence_topic

log = logging.getLogger(__name__)

#: Evidence hashes enqueued recently; an 'update' event that repeats the best frame does not resend it.
RECENT_EVIDENCE = 1024
#: Seconds between repeated "cannot store" log lines while the disk stays full.
STORAGE_LOG_EVERY_S = 60.0


class OutboxSink:
    """An :class:`edge.interfaces.QueuedSink`: delivers over an :class:`MqttLink` through a disk outbox."""

    def __init__(self, config: MqttSinkConfig, link: MqttLink, *, owns_link: bool = False) -> None:
        """``owns_link``: :meth:`close` closes ``link`` too (:meth:`open`)."""
        self.link = link
        self.device_id = link.device_id
        self._owns_link = owns_link
        self._closed = False
        #: Seconds ``close()`` waits for the server's acks (0: the pipeline restarts at once, config update).
        self.drain_on_close_s = config.drain_on_close_s
        self._recent_evidence: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._emit_lock = threading.Lock()
        self._last_storage_log = -STORAGE_LOG_EVERY_S
        self._events_topic = events_topic(self.device_id)
        limits = OutboxLimits(
            max_bytes=config.outbox.max_bytes,
            max_age_s=config.outbox.max_age_s,
            evidence_max_age_s=config.outbox.evidence_max_age_s,
            reserve_bytes=config.outbox.reserve_bytes,
        )
        self.outbox = Outbox(config.outbox.path, limits)
        self.outbox_path = Path(config.outbox.path)
        self._left: Depth | None = None  # what the server had not acknowledged at close
        self._publisher = OutboxPublisher(
            self.outbox,
            link.connection,
            refused_min_s=config.reconnect_min_s,
            refused_max_s=config.reconnect_max_s,
            puback_timeout_s=max(30.0, 2.0 * config.keepalive_s),
            stored_ack_timeout_s=config.ack_timeout_s,
            stored_ack_timeout_max_s=config.ack_timeout_max_s,
        )
        self._publisher.start()
        link.carry(self.outbox, self._publisher)

    @classmethod
    def open(
        cls,
        config: MqttSinkConfig,
        *,
        device_id: str,
        models: Sequence[ModelRef] = (),
        hold_commands: bool = False,
    ) -> OutboxSink:
        """A sink on a link of its own (``sink.link``), both closed by :meth:`close`."""
        link = MqttLink(config, device_id=device_id, models=models, hold_commands=hold_commands)
        try:
            return cls(config, link, owns_link=True)
        except BaseException:
            link.close()
            raise

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
        everything if the link is up, then stop sending. Whatever is left stays in the outbox for
        the next start (:meth:`pending` says how much)."""
        if self._closed:
            return
        self._closed = True
        if drain_timeout_s is None:
            drain_timeout_s = self.drain_on_close_s
        if drain_timeout_s > 0 and self.link.connected:
            self._publisher.wait_idle(drain_timeout_s)
        self._publisher.stop()
        self.link.drop_carried()
        self._left = self.outbox.depth()
        self.outbox.close()
        if self._owns_link:
            self.link.close()

    # -- QueuedSink --------------------------------------------------------------------------

    def pending(self) -> Pending:
        """Events and images the server has not acknowledged yet (after close: what the next start sends)."""
        depth = self._left if self._left is not None else self.outbox.depth()
        return Pending(events=depth.events, evidence=depth.evidence, where=str(self.outbox_path))

    def wait_until_delivered(self, timeout: float) -> bool:
        """True once the server acknowledged every message as stored, so the outbox is empty
        (False after ``timeout``)."""
        return self._publisher.wait_idle(timeout)

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

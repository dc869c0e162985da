"""The ingest worker's MQTT consumer: client, callbacks, inbox and acknowledgements.

    worker = IngestWorker(settings)
    worker.run()            # blocks; worker.stop() from a signal handler or another thread

It subscribes with a shared subscription (``$share/<group>/streetwatch/v1/+/...``)
so several workers split the load, with QoS 1, a persistent session
(clean start off) and manual acknowledgement: a message is acknowledged only
once the transaction that stored it has committed, so a crash at any point
makes the broker deliver it again, and the ``event_id`` makes that harmless.
Storing is :class:`server.ingest.storer.BatchStorer`'s job; this module acts on
the outcome of each attempt.

Bad input never stops the worker: every refused message is counted by reason
in the ``rejections`` table, logged, and acknowledged (re-delivering it would
not make it valid). A database outage is different: the batch is kept, not
acknowledged, and retried with backoff.

Each worker needs its own client id, the same after a restart: its session holds
the messages routed to it.
"""

from __future__ import annotations

import gc
import logging
import queue
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from server.cases.second_pass import expire_sightings
from server.db.session import make_engine, session_factory
from server.evidence_store import EvidenceStore
from server.fleet.rollouts import advance
from server.ingest.acks import ack_key, stored_acks
from server.ingest.decoding import DecodeLanes, RawMessage
from server.ingest.heartbeat import HEARTBEAT_S, beat
from server.ingest.messages import Decoded, Rejected, RejectReason, decode
from server.ingest.orphans import prune_orphan_evidence
from server.ingest.process import prune_telemetry
from server.ingest.storer import MAX_DEFERRALS, BatchStorer, Received, StoreOutcome, WorkerStats
from server.settings import ServerSettings
from server.signs.settle import settle_pending
from streetwatch.events import utcnow
from streetwatch.topics import TopicKind, commands_topic, subscription

log = logging.getLogger(__name__)

#: A session outlives a worker restart by this much; messages queue at the broker meanwhile.
SESSION_EXPIRY_S = 7 * 24 * 3600
PRUNE_EVERY_S = 600.0
#: How often pending signboard sightings (crop not there yet) are looked at again.
SIGNS_SETTLE_EVERY_S = 15.0
#: Longest wait between reconnect attempts (they start at 1 s and double).
RECONNECT_MAX_S = 2


class IngestWorker:
    """One MQTT consumer feeding a :class:`~server.ingest.storer.BatchStorer`."""

    def __init__(
        self,
        settings: ServerSettings,
        *,
        client_id: str | None = None,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        # Stable across restarts on purpose: the broker keeps this id's session, with the messages
        # the shared subscription routed to it, while the worker is down.
        self.client_id = client_id or settings.mqtt.client_id
        self._engine = engine
        self._own_engine = engine is None
        self._clock = clock
        self._inbox: queue.Queue[Received] = queue.Queue()
        self._carried: list[Received] = []  # deferred by the last batch, first in the next
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._connection = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stats = WorkerStats()
        self.store = EvidenceStore(settings.evidence_dir)
        self._lanes = DecodeLanes(self._decode, self._inbox.put, name=f"ingest-{self.client_id}")
        self._client = self._make_client()

    # -- life cycle --------------------------------------------------------------------------

    def run(self) -> None:
        """Connect and store messages until :meth:`stop` is called."""
        if threading.current_thread() is threading.main_thread():
            tune_gc_for_throughput()
        engine = self._engine or make_engine(self.settings.database_url)
        sessions = session_factory(engine)
        storer = BatchStorer(self.settings, sessions, self._clock, self.stats)
        mq = self.settings.mqtt
        connect_props = Properties(PacketTypes.CONNECT)
        connect_props.SessionExpiryInterval = SESSION_EXPIRY_S
        connect_props.ReceiveMaximum = mq.receive_maximum
        self._lanes.start()
        self._client.connect_async(
            mq.host, mq.port, mq.keepalive_s, clean_start=False, properties=connect_props
        )
        self._client.loop_start()
        log.info("ingest worker %s: connecting to %s:%d", self.client_id, mq.host, mq.port)
        last_prune = last_beat = last_fleet = last_signs = 0.0
        started_at = self._clock()
        try:
            while not self._stopping.is_set():
                batch: list[Received] = []
                try:
                    if time.monotonic() - last_beat >= HEARTBEAT_S:
                        last_beat = time.monotonic()
                        beat(sessions, self.client_id, started_at, self._clock(), self._connected.is_set())
                    batch = self._collect()
                    if batch:
                        self._store_until_done(storer, batch)
                    if time.monotonic() - last_prune > PRUNE_EVERY_S:
                        last_prune = time.monotonic()
                        self._prune(sessions)
                        self._expire_sightings(sessions)
                    if time.monotonic() - last_fleet > self.settings.fleet.advance_every_s:
                        last_fleet = time.monotonic()
                        self._advance_rollouts(sessions)
                    if time.monotonic() - last_signs > SIGNS_SETTLE_EVERY_S:
                        last_signs = time.monotonic()
                        self._settle_signs(sessions)
                except Exception:
                    # A bug must not end ingest. The broker re-sends unacked messages only after a
                    # reconnect, so the batch is kept and tried again (a repeat is a duplicate).
                    log.exception("ingest worker %s: unexpected failure; carrying on", self.client_id)
                    self._carried = batch + self._carried
                    self._stopping.wait(1.0)
        finally:
            self._client.disconnect()
            self._client.loop_stop()
            self._lanes.stop()
            beat(sessions, self.client_id, started_at, self._clock(), connected=False)
            if self._own_engine:
                engine.dispose()
            log.info("ingest worker %s: stopped (%s)", self.client_id, self.stats)

    def start(self) -> None:
        """Run in a background thread (tests, the demo)."""
        self._thread = threading.Thread(target=self.run, name=f"ingest-{self.client_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand and disconnect; unacknowledged messages stay with the broker."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        return self._subscribed.wait(timeout)

    # -- MQTT --------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        mq = self.settings.mqtt
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if mq.username:
            client.username_pw_set(mq.username, mq.password.get_secret_value() if mq.password else None)
        if mq.tls_ca_file:
            client.tls_set(ca_certs=mq.tls_ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        # Back soon after a broker restart: Mosquitto forgets shared subscriptions, so until this
        # worker subscribes again its share reaches no one (boxes keep it until it is stored).
        client.reconnect_delay_set(min_delay=1, max_delay=RECONNECT_MAX_S)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: mqtt.Client, _userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode, _p: object
    ) -> None:
        if reason.is_failure:
            log.error("ingest worker %s: broker refused the connection: %s", self.client_id, reason)
            return
        with self._lock:
            self._connection += 1
        self._connected.set()
        # Subscribe on every connect, even with "session present": Mosquitto 2.0 does not
        # restore $share subscriptions after a restart.
        group = self.settings.mqtt.share_group
        topics = [
            (f"$share/{group}/{subscription(kind)}", _subscribe_options(kind))
            for kind in ("events", "evidence", "status", "telemetry", "command_replies")
        ]
        client.subscribe(topics)
        log.info(
            "ingest worker %s: connected (session present: %s), subscribing as group %r",
            self.client_id,
            flags.session_present,
            group,
        )

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: object, _mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("ingest worker %s: subscription refused: %s", self.client_id, ", ".join(failed))
        else:
            self._subscribed.set()

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: object, _flags: object, reason: ReasonCode, _p: object
    ) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("ingest worker %s: disconnected (%s); reconnecting", self.client_id, reason)

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        # Only hand the bytes over: validation runs on the decode lanes, so a slow or huge
        # payload never holds up keepalives, acks or other devices' messages on this thread.
        payload = bytes(message.payload)
        retained = bool(message.retain) and not message.topic.endswith("/status")
        if retained:
            if not payload:
                # Our own clear of a retained message coming back: nothing to store.
                self._client.ack(message.mid, message.qos)
                return
            # Only status may be retained. A box that leaves anything else retained would have
            # it handed to every worker on every subscribe: clear it, then refuse it below.
            self._client.publish(message.topic, b"", qos=1, retain=True)
        raw = RawMessage(message.topic, payload, message.mid, message.qos, self._connection, retained)
        self._lanes.submit(raw)

    def _decode(self, raw: RawMessage) -> Received:
        """Validate one message (on a decode lane); a bug in validation becomes a refusal."""
        decoded: Decoded
        try:
            if raw.retained:
                decoded = Rejected(
                    RejectReason.retained, "published with the retain flag; only status may be retained"
                )
            else:
                decoded = decode(raw.topic, raw.payload, self.settings.limits, self.store, self._clock())
        except Exception as exc:
            log.exception("ingest worker %s: cannot validate %s", self.client_id, raw.topic)
            decoded = Rejected(RejectReason.processing_error, f"{type(exc).__name__}: {exc}"[:500])
        ack = ack_key(raw.topic, raw.payload, decoded)
        return Received(raw.topic, raw.mid, raw.qos, raw.connection, decoded, ack)

    def _ack(self, batch: list[Received]) -> None:
        current = self._connection
        for item in batch:
            # A message id from an earlier connection names nothing now; the broker re-sends
            # that message on the new connection and it is stored as a duplicate.
            if item.qos > 0 and item.connection == current:
                self._client.ack(item.mid, item.qos)

    def _acknowledge_stored(self, done: list[Received]) -> None:
        """Tell each box which of its messages are now committed (after the commit, never before)."""
        for topic, payload in stored_acks(m.ack for m in done):
            # Queued for the network thread (the only writer on the socket); a disconnect loses
            # nothing: the box sends again what stays unacknowledged, and it is acked as a duplicate.
            self._client.publish(topic, payload, qos=1)
            self.stats.ack_messages += 1
        self.stats.acked_ids += sum(m.ack is not None for m in done)

    # -- batches -----------------------------------------------------------------------------

    def _collect(self) -> list[Received]:
        limits = self.settings.limits
        batch, self._carried = self._carried, []
        if not batch:
            try:
                batch.append(self._inbox.get(timeout=0.2))
            except queue.Empty:
                return []
        deadline = time.monotonic() + limits.batch_wait_s
        while len(batch) < limits.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(
                    self._inbox.get(timeout=remaining) if remaining > 0 else self._inbox.get_nowait()
                )
            except queue.Empty:
                break
        return batch

    def _store_until_done(self, storer: BatchStorer, batch: list[Received]) -> None:
        """Store a batch and ack what commits; wait out database outages, isolate poison messages."""
        work: deque[tuple[list[Received], bool]] = deque([(batch, False)])  # (messages, wait for locks)
        delay, conflicts = 0.5, 0
        while work:
            messages, wait = work[0]
            result = storer.store(messages, wait=wait)
            if result.outcome is StoreOutcome.outage_retry:
                self.stats.retries += 1
                if result.conflict and conflicts < 5:
                    conflicts += 1  # deadlock or serialization failure: the next try usually passes
                    log.info("ingest worker %s: batch conflicted; retrying", self.client_id)
                    continue
                # The database itself is unwell (down, read-only, not migrated): keep the batch
                # unacknowledged and try again; stopping leaves it with the broker.
                if self._stopping.is_set():
                    unstored = sum(len(m) for m, _ in work)
                    log.warning(
                        "ingest worker %s: stopping with %d messages unstored; the broker keeps them",
                        self.client_id,
                        unstored,
                    )
                    return
                log.warning(
                    "ingest worker %s: database unavailable (%s); retrying in %.1fs",
                    self.client_id,
                    _first_line(result.failure),
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            work.popleft()
            delay, conflicts = 0.5, 0
            if result.outcome is StoreOutcome.isolate_one:
                # Something in the batch breaks the code or violates a constraint: find it.
                failure = result.failure
                if len(messages) > 1:
                    log.warning(
                        "ingest worker %s: batch failed (%s); storing one by one", self.client_id, failure
                    )
                    work.extendleft(([m], True) for m in reversed(messages))
                    continue
                log.error(
                    "ingest worker %s: cannot store %s", self.client_id, messages[0].topic, exc_info=failure
                )
                detail = f"{type(failure).__name__}: {failure}"
                work.appendleft(([messages[0].refused(RejectReason.processing_error, detail)], True))
                continue
            self._ack(result.done)
            self._acknowledge_stored(result.done)
            if result.outcome is StoreOutcome.deferred:
                # Contended messages ride along with the next batch, which tries their locks again
                # (the other worker has usually committed by then); after a few tries they wait.
                later = [replace(m, deferrals=m.deferrals + 1) for m in result.deferred]
                self._carried.extend(m for m in later if m.deferrals < MAX_DEFERRALS)
                urgent = [m for m in later if m.deferrals >= MAX_DEFERRALS]
                if urgent:
                    work.append((urgent, True))

    def _advance_rollouts(self, sessions: sessionmaker[Session]) -> None:
        """Send the next wave of each running rollout, or halt it (:mod:`server.fleet.rollouts`)."""
        if not self._connected.is_set():
            return  # a command must not be marked sent while it cannot leave
        try:
            with sessions.begin() as session:
                outgoing = advance(session, self.settings, self._clock())
        except DBAPIError as exc:
            log.warning("ingest worker %s: rollouts not advanced: %s", self.client_id, exc.orig or exc)
            return
        except Exception:
            # Caught here, not by the loop: the batch just stored must not be carried again.
            log.exception("ingest worker %s: rollouts not advanced", self.client_id)
            return
        for device_id, payload in outgoing:
            # After the commit: a crash before this line leaves the box silent, and the reply
            # timeout halts the rollout (``streetwatch fleet resume`` sends again).
            self._client.publish(commands_topic(device_id), payload, qos=1)
            log.info("ingest worker %s: sent a command to %s", self.client_id, device_id)

    def _settle_signs(self, sessions: sessionmaker[Session]) -> None:
        """Decide signboard sightings that waited for their crop (:mod:`server.signs.settle`)."""
        try:
            with sessions.begin() as session:
                decided = settle_pending(session, self.settings, self._clock())
        except DBAPIError as exc:
            log.warning(
                "ingest worker %s: pending sign sightings not decided: %s", self.client_id, exc.orig or exc
            )
            return
        if decided:
            log.info("ingest worker %s: decided %d pending sign sightings", self.client_id, decided)

    def _expire_sightings(self, sessions: sessionmaker[Session]) -> None:
        """Sightings no second pass confirmed in time become ``expired`` (:mod:`server.cases.second_pass`)."""
        try:
            with sessions.begin() as session:
                expired = expire_sightings(session, self.settings, self._clock())
        except DBAPIError as exc:
            log.warning("ingest worker %s: sightings not expired: %s", self.client_id, exc.orig or exc)
            return
        if expired:
            log.info(
                "ingest worker %s: %d sightings expired without a second pass", self.client_id, len(expired)
            )

    def _prune(self, sessions: sessionmaker[Session]) -> None:
        try:
            with sessions.begin() as session:
                removed = prune_telemetry(session, self.settings, self._clock())
            if removed:
                log.info("ingest worker %s: pruned %d old telemetry points", self.client_id, removed)
            orphans = prune_orphan_evidence(sessions, self.store, self.settings.limits, self._clock())
            if orphans:
                log.info("ingest worker %s: deleted %d images no event named", self.client_id, orphans)
        except DBAPIError as exc:
            log.warning("ingest worker %s: telemetry pruning failed: %s", self.client_id, exc.orig or exc)


def tune_gc_for_throughput() -> None:
    """Fewer garbage-collector passes for a process that is an ingest worker and nothing else.

    Ingest allocates many short-lived, acyclic objects (parsed events, rows); with the default
    thresholds the collector runs every few hundred events and rescans every long-lived object
    (modules, SQLAlchemy's caches), which measurably cut throughput. Objects alive at start-up are
    frozen out of the scans; cycles are still collected, just less often.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _first_line(failure: Exception | None) -> str:
    cause = getattr(failure, "orig", None) or failure
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _subscribe_options(kind: TopicKind) -> SubscribeOptions:
    """QoS 1, the retain flag kept as published; retained messages at subscribe only for status.

    Mosquitto hands retained messages to shared subscriptions on every subscribe and cannot
    refuse the retain flag per topic; retain handling 2 keeps a retained payload a box left
    on events or evidence from reaching every worker restart.
    """
    return SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=0 if kind == "status" else 2)

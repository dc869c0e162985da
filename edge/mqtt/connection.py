"""One MQTT connection to the broker (paho-mqtt 2, MQTT 5), kept up by its own thread.

Why MQTT 5: a 3.1.1 broker silently drops a publish the ACL forbids and still
acknowledges it, so the box would delete a message nobody received. MQTT 5 returns a
reason code in the PUBACK (0x87 Not authorized); the publisher keeps the row and
backs off instead.

The session is persistent (clean start false, a session expiry interval), so the
broker keeps the box's ``commands`` and ``acks`` subscriptions and what was queued on
them while it is away; paho re-sends its unacknowledged QoS 1 publishes with their
packet ids after a reconnect. The subscriptions are made again on every connect
(a restarted broker may have lost them).

One writer per socket: only the network thread writes to the socket. ``publish()`` is
called from the outbox publisher, the reporter and the command threads; paho would
write from the caller's thread while the network thread reads and writes the same
socket, which with TLS corrupts the stream ("decryption failed or bad record mac").
Registering ``on_socket_register_write`` tells paho an event loop owns the socket:
``publish()`` then only queues the packet and wakes the network thread, which writes it.

Reconnects use exponential backoff with jitter (paho's own loop has no jitter). The
log gets one line per change of state (connected / disconnected with the reason /
refused with the reason / unreachable), not one per retry.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttSinkConfig
from edge.mqtt.backoff import Backoff
from edge.secret_file import read_secret

log = logging.getLogger(__name__)

#: A connection that holds this long counts as stable: backoff resets, flapping ends.
STABLE_AFTER_S = 10.0

#: PUBACK reason codes from 0x80 up are failures (MQTT 5, 3.4.2.1).
FIRST_FAILURE_REASON = 0x80
NOT_AUTHORIZED = 0x87
#: PUBACK 0x10: accepted, but no subscriber matched; nobody received it.
NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass(frozen=True)
class TlsSettings:
    ca_file: str | None
    certfile: str | None
    keyfile: str | None
    insecure: bool


@dataclass(frozen=True)
class BrokerSettings:
    """Everything needed to reach the broker as one device."""

    host: str
    port: int
    client_id: str
    username: str | None
    password: str | None
    tls: TlsSettings | None
    keepalive_s: int
    session_expiry_s: int
    reconnect_min_s: float
    reconnect_max_s: float
    max_inflight: int

    @classmethod
    def from_config(cls, config: MqttSinkConfig, device_id: str) -> BrokerSettings:
        password = config.password
        if config.password_file:
            password = read_password_file(config.password_file)
        tls = None
        if config.tls is not None:
            t = config.tls
            tls = TlsSettings(t.ca_file, t.certfile, t.keyfile, t.insecure)
        return cls(
            host=config.host,
            port=config.port or (8883 if tls else 1883),
            client_id=config.client_id or device_id,
            username=config.username or (device_id if password is not None else None),
            password=password,
            tls=tls,
            keepalive_s=config.keepalive_s,
            session_expiry_s=config.session_expiry_s,
            reconnect_min_s=config.reconnect_min_s,
            reconnect_max_s=config.reconnect_max_s,
            max_inflight=config.inflight_window,
        )


def read_password_file(path: str) -> str:
    return read_secret(path, "MQTT password")


MessageHandler = Callable[[str, bytes], None]
AckHandler = Callable[[int, int], None]
ConnectHandler = Callable[[bool], None]


class MqttConnection:
    """Connects, keeps reconnecting until :meth:`stop`, and forwards acks and messages.

    ``on_ack(mid, reason_code)`` and ``on_message(topic, payload)`` run on the network
    thread and must return quickly; ``on_connected(session_present)`` and ``on_refused(why)``
    (the broker refused the login) too.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        *,
        will: tuple[str, bytes] | None = None,
        subscriptions: tuple[str, ...] = (),
        on_connected: ConnectHandler | None = None,
        on_ack: AckHandler | None = None,
        on_message: MessageHandler | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self._on_refused = on_refused
        self.connected = threading.Event()
        self.window = settings.max_inflight
        self.max_packet_size: int | None = None  # announced by an MQTT 5 broker in CONNACK
        self._subscriptions = subscriptions
        self._on_connected = on_connected
        self._on_ack = on_ack
        self._on_message = on_message
        self._stopping = threading.Event()
        self._state: tuple[str, str] | None = None
        self._failed_attempts = 0
        self._connected_at: float | None = None
        self._flapping = False  # dropped right after connect, twice in a row, for the same reason
        self._last_loss: str | None = None
        self._refusal: str | None = None  # the publish refusal last logged, until the link holds without one
        self._refused_since_connect = False
        self._backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self._client = self._make_client(will)
        self._thread = threading.Thread(target=self._run, name="mqtt-network", daemon=True)

    def _make_client(self, will: tuple[str, bytes] | None) -> mqtt.Client:
        s = self.settings
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            protocol=mqtt.MQTTv5,
            reconnect_on_failure=False,  # our loop reconnects, with jitter
        )
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.tls is not None:
            client.tls_set(
                ca_certs=s.tls.ca_file,
                certfile=s.tls.certfile,
                keyfile=s.tls.keyfile,
                cert_reqs=ssl.CERT_REQUIRED,
            )
            client.tls_insecure_set(s.tls.insecure)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.max_inflight_messages_set(s.max_inflight)
        client.max_queued_messages_set(0)  # the outbox bounds the queue, not paho
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_message = self._handle_message
        # Only the network thread writes: publish() from other threads queues and wakes it.
        client.on_socket_register_write = _network_thread_writes
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = s.session_expiry_s
        client.connect_async(
            s.host, s.port, keepalive=s.keepalive_s, clean_start=False, properties=properties
        )
        return client

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Disconnect cleanly (no last will) and end the network thread."""
        self._stopping.set()
        if self.connected.is_set():
            self._client.disconnect()
        self._thread.join(timeout)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> int | None:
        """Hand a message to paho; return its packet id, or None if paho refused it.

        A message published while the link is down stays in paho's memory and goes out
        after the reconnect under the same packet id, so its id is still returned.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return info.mid
        log.debug("paho refused a publish on %s: %s", topic, mqtt.error_string(info.rc))
        return None

    def publish_and_wait(self, topic: str, payload: bytes, *, retain: bool, timeout: float) -> bool:
        """Publish at QoS 1 and wait for the PUBACK (clean shutdown); False if it did not come."""
        if not self.connected.is_set():
            return False
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    # -- network thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._client.reconnect()
            except (OSError, ssl.SSLError) as exc:
                self._announce("unreachable", f"cannot reach {self._where()}: {exc}", logging.WARNING)
                self._wait_before_retry()
                continue
            try:
                while not self._stopping.is_set():
                    rc = self._client.loop(timeout=0.5)
                    if rc != mqtt.MQTT_ERR_SUCCESS:
                        break
                    self._note_if_stable()
            except Exception:  # never let the link die for good on a surprise; log it and reconnect
                log.exception("MQTT network loop failed; reconnecting")
            self.connected.clear()
            if not self._stopping.is_set():
                self._wait_before_retry()
        self._client.loop(timeout=0.1)  # let a final DISCONNECT go out

    def _note_if_stable(self) -> None:
        since = self._connected_at
        if since is None or time.monotonic() - since < STABLE_AFTER_S:
            return
        if self._flapping:
            log.info("MQTT connection to %s holds again", self._where())
            self._flapping = False
        if self._refusal is not None and not self._refused_since_connect:
            log.info("MQTT broker has not refused a publish since the link came up")
            self._refusal = None
        self._backoff.reset()

    def _wait_before_retry(self) -> None:
        self._failed_attempts += 1
        self._stopping.wait(self._backoff.next_delay())

    def _where(self) -> str:
        return f"{self.settings.host}:{self.settings.port}"

    def _announce(self, state: str, detail: str, level: int) -> None:
        if self._state != (state, detail):
            self._state = (state, detail)
            log.log(level, "MQTT %s", detail)

    # -- paho callbacks (network thread) ------------------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            refusal = f"broker {self._where()} refused the connection as {self.settings.username!r}: {reason}"
            self._announce(
                "refused",
                f"{refusal} (check the device's username/password and the broker password file); retrying "
                "with backoff",
                logging.ERROR,
            )
            self._call(self._on_refused, refusal)
            return
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        # paho's own limit cannot change on a live connection; the publisher's window can.
        self.window = min(self.settings.max_inflight, receive_maximum or self.settings.max_inflight)
        self.max_packet_size = getattr(properties, "MaximumPacketSize", None)
        retries = f" after {self._failed_attempts} failed attempt(s)" if self._failed_attempts else ""
        self._failed_attempts = 0
        self._connected_at = time.monotonic()
        self._refused_since_connect = False
        session = "resumed" if flags.session_present else "new"
        self._announce(
            "connected",
            f"connected to {self._where()} ({session} session){retries}",
            logging.DEBUG if self._flapping else logging.INFO,
        )
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        self.connected.set()
        self._call(self._on_connected, bool(flags.session_present))

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self.connected.clear()
        since, self._connected_at = self._connected_at, None
        quick = since is not None and time.monotonic() - since < STABLE_AFTER_S
        repeated = quick and str(reason) == self._last_loss
        self._last_loss = str(reason)
        if self._stopping.is_set():
            self._announce("stopped", f"disconnected from {self._where()} (shutting down)", logging.INFO)
        elif repeated and not self._flapping:
            # e.g. Mosquitto 2.0 closes the link after refusing a publish: say it once, not per cycle.
            self._flapping = True
            log.warning(
                "MQTT connection to %s keeps dropping right after connect (%s); "
                "retrying with backoff, quietly until it holds",
                self._where(),
                reason,
            )
        elif self._state is None or self._state[0] == "connected":
            self._announce(
                "disconnected",
                f"lost {self._where()}: {reason}; reconnecting with backoff",
                logging.DEBUG if self._flapping else logging.WARNING,
            )

    def _handle_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any
    ) -> None:
        code = int(getattr(reason, "value", reason))
        if code >= FIRST_FAILURE_REASON and self._refusal != str(reason):
            self._refusal = str(reason)
            hint = ""
            if code == NOT_AUTHORIZED:
                hint = (
                    f": the broker ACL does not let user {self.settings.username!r} publish under "
                    f"streetwatch/v1/{self.settings.client_id}/ (a box may only publish under its own "
                    "device_id, which must be its username)"
                )
            log.error("MQTT broker refused a publish with reason 0x%02x %s%s", code, reason, hint)
        if code >= FIRST_FAILURE_REASON:
            self._refused_since_connect = True
        self._call(self._on_ack, mid, code)

    def _handle_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._call(self._on_message, message.topic, bytes(message.payload))

    @staticmethod
    def _call(handler: Callable[..., None] | None, *args: Any) -> None:
        if handler is None:
            return
        try:
            handler(*args)
        except Exception:  # a bug in a handler must not kill the network thread
            log.exception("MQTT callback %s failed", getattr(handler, "__qualname__", handler))


def _network_thread_writes(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """paho asks for a write: nothing to do, the network loop writes what is queued."""

"""A small MQTT 5 client for broker tests: what the broker granted, refused and delivered."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class BrokerClient:
    """Connects as ``username`` with ``client_id`` (persistent session unless ``clean``)."""

    port: int
    username: str
    password: str
    client_id: str
    clean: bool = False
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._subacks: dict[int, list[ReasonCode]] = {}
        self._pubacks: dict[int, ReasonCode] = {}
        self.connect_reason: ReasonCode | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(self.username, self.password)
        self.client.reconnect_delay_set(0.1, 0.2)  # a refused login must not hold close() for 1 s
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self.connect_reason = reason
        self._connected.set()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: object, mid: int, reasons: list[ReasonCode], _p: object
    ) -> None:
        with self._lock:
            self._subacks[mid] = reasons

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        with self._lock:
            self._pubacks[mid] = reason

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, bytes(message.payload), bool(message.retain)))

    def connect(self, timeout: float = 5.0) -> bool:
        """True when the broker accepted the login (False: it refused, e.g. Not authorized)."""
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if self.clean else 3600
        self.client.connect("127.0.0.1", self.port, keepalive=10, clean_start=self.clean, properties=props)
        self.client.loop_start()
        assert self._connected.wait(timeout), f"{self.client_id}: no CONNACK within {timeout} s"
        assert self.connect_reason is not None
        return not self.connect_reason.is_failure

    def subscribe(self, filters: Sequence[str], options: SubscribeOptions | None = None) -> list[str]:
        """The broker's answer per filter: 'Granted QoS 1' or a refusal such as 'Not authorized'."""
        opts = options or SubscribeOptions(qos=1)
        _rc, mid = self.client.subscribe([(f, opts) for f in filters])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with self._lock:
                if mid in self._subacks:
                    return [str(r) for r in self._subacks[mid]]
            time.sleep(0.02)
        raise AssertionError(f"{self.client_id}: no SUBACK for {filters}")

    def publish(self, topic: str, payload: bytes, retain: bool = False, timeout: float = 10.0) -> str:
        """The broker's PUBACK reason ('Success', 'Not authorized', ...) or 'no answer'."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if info.mid in self._pubacks:
                    return str(self._pubacks[info.mid])
            if not self.client.is_connected() and time.monotonic() > deadline - timeout + 1:
                return "no answer"
            time.sleep(0.01)
        return "no answer"

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self.messages):
                    return True
            time.sleep(0.05)
        with self._lock:
            return predicate(self.messages)

    def received(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()  # first: the network loop then ends at once instead of after its 1 s wait
        self.client.loop_stop()

"""Helpers for the MQTT delivery tests: events, evidence, sink configs and a subscriber that plays the server.

The :class:`Collector` is a real MQTT client. Like the server's ingest it records what
the boxes send and, unless told otherwise, acknowledges each event and image as stored
(``StoredAck`` on ``streetwatch/v1/<device>/acks``), which is what lets a box delete a
row from its outbox.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttSinkConfig
from edge.interfaces import Evidence
from streetwatch.events import EvidenceRef, ViolationEvent
from streetwatch.messages import stored_ack_batches
from streetwatch.topics import acks_topic, parse_topic

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)
NAMESPACE = uuid.UUID("6f1c3f0e-5d2a-4a4e-9a7e-2b8f1f0c9d11")


def event_id(device_id: str, i: int) -> uuid.UUID:
    """Deterministic per (device, index): a re-fed event keeps its id, like an outbox re-send."""
    return uuid.uuid5(NAMESPACE, f"{device_id}/{i}")


def make_event(device_id: str, i: int, evidence: EvidenceRef | None = None) -> ViolationEvent:
    observed = T0 + timedelta(seconds=i)
    return ViolationEvent.model_validate(
        {
            "event_id": event_id(device_id, i),
            "device_id": device_id,
            "track_id": uuid.uuid5(NAMESPACE, f"track/{device_id}/{i // 3}"),
            "sequence": i % 3,
            "lifecycle": "new" if i % 3 == 0 else "update",
            "violation_type": "garbage_overflow",
            "candidate": False,
            "detector_class": "overflow",
            "score": 0.8,
            "box": (10.0, 20.0, 110.0, 220.0),
            "frame_width": 640,
            "frame_height": 480,
            "observed_at": observed,
            "first_seen_at": observed - timedelta(seconds=1),
            "frames_seen": 3,
            "position": {"lat": 31.23, "lon": 121.47, "source": "gpx"},
            "model": {"name": "streetwatch-det", "version": "1"},
            "evidence": evidence.model_dump() if evidence else None,
        }
    )


def make_evidence(i: int, size: int = 2000, clean: bool = False) -> Evidence:
    """Distinct byte strings standing in for the frame, crop and (``clean``) clean-frame JPEGs
    (the sink treats them as opaque)."""
    frame = (b"\xff\xd8frame-%d-" % i) * (size // 12 + 1)
    crop = (b"\xff\xd8crop-%d-" % i) * (size // 24 + 1)
    clean_frame = (b"\xff\xd8clean-%d-" % i) * (size // 12 + 1) if clean else None
    ref = EvidenceRef(
        frame_sha256=hashlib.sha256(frame).hexdigest(),
        frame_bytes=len(frame),
        crop_sha256=hashlib.sha256(crop).hexdigest(),
        crop_bytes=len(crop),
        clean_sha256=hashlib.sha256(clean_frame).hexdigest() if clean_frame else None,
        clean_bytes=len(clean_frame) if clean_frame else None,
        captured_at=T0 + timedelta(seconds=i),
    )
    return Evidence(frame_jpeg=frame, crop_jpeg=crop, ref=ref, clean_jpeg=clean_frame)


def sink_config(port: int, outbox_path: Path, **overrides: Any) -> MqttSinkConfig:
    raw: dict[str, Any] = {
        "kind": "mqtt",
        "host": "127.0.0.1",
        "port": port,
        "keepalive_s": 5,
        "reconnect_min_s": 0.1,
        "reconnect_max_s": 0.5,
        "telemetry_interval_s": 60,
        "outbox": {"path": str(outbox_path)},
    }
    outbox_overrides = overrides.pop("outbox", {})
    raw.update(overrides)
    raw["outbox"].update(outbox_overrides)
    return MqttSinkConfig.model_validate(raw)


@dataclass
class Collector:
    """A persistent-session subscriber that records everything the boxes send and acknowledges
    events and images as stored (a stand-in server); ``acking = False`` plays a server that
    receives but cannot store (no acks)."""

    port: int
    username: str | None = None
    password: str | None = None
    acking: bool = True
    acks_evidence: bool = True  # False: like a server whose evidence disk is full
    client_id: str | None = None  # a fixed id resumes the same persistent session
    subscriptions: tuple[str, ...] = ("streetwatch/v1/#",)  # the ingest's: $share/<group>/...
    acks_sent: int = 0
    events: list[str] = field(default_factory=list)
    evidence: list[tuple[str, bytes]] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)
    telemetry: list[dict[str, Any]] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "event:<id>" / "evidence:<sha>" in arrival order

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id or f"collector-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if self.username:
            self.client.username_pw_set(self.username, self.password)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe([(s, 1) for s in self.subscriptions])
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self._to_ack: dict[str, tuple[list[str], list[str]]] = {}  # device -> (event ids, hashes)
        self._stop = threading.Event()
        self._acker = threading.Thread(target=self._ack_loop, name="collector-acks", daemon=True)
        self._acker.start()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", self.port, keepalive=5, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        parsed = parse_topic(message.topic)
        payload = bytes(message.payload)
        with self._lock:
            if parsed.kind == "events":
                eid = ViolationEvent.from_json(payload).event_id
                self.events.append(str(eid))
                self.order.append(f"event:{eid}")
                if self.acking:
                    self._to_ack.setdefault(parsed.device_id, ([], []))[0].append(str(eid))
            elif parsed.kind == "evidence":
                assert parsed.sha256 == hashlib.sha256(payload).hexdigest()
                self.evidence.append((parsed.sha256, payload))
                self.order.append(f"evidence:{parsed.sha256}")
                if self.acking and self.acks_evidence:
                    self._to_ack.setdefault(parsed.device_id, ([], []))[1].append(parsed.sha256)
            elif parsed.kind == "status" and payload:
                self.status.append(json.loads(payload))
            elif parsed.kind == "telemetry":
                self.telemetry.append(json.loads(payload))

    def wait_for(self, predicate: Callable[[Collector], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self):
                    return True
            time.sleep(0.05)
        with self._lock:
            return predicate(self)

    def _ack_loop(self) -> None:
        """Batch acknowledgements per device every 20 ms, like the server does after its commit."""
        while not self._stop.wait(0.02):
            with self._lock:
                batches, self._to_ack = self._to_ack, {}
            for device, (events, hashes) in batches.items():
                for ack in stored_ack_batches(events, hashes):
                    self.client.publish(acks_topic(device), ack.to_json(), qos=1)
                    self.acks_sent += 1

    def close(self) -> None:
        self._stop.set()
        self._acker.join(2)
        self.client.loop_stop()
        self.client.disconnect()

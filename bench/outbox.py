"""Outbox -> broker throughput, backlog drain time and memory during the drain, on loopback.

    python -m bench.outbox --json [--backlog 100000] [--small 20000] [--window 100]

Starts a private Mosquitto, then measures in one process and prints ONE JSON object:

* ``baseline``: raw paho-mqtt QoS 1 publishing of ``--small`` events with the same
  in-flight window and no outbox (messages only in memory): events/s.
* ``outbox``: the same ``--small`` events committed to the outbox first, then drained
  by :class:`edge.mqtt.OutboxSink` until the server acknowledged every one (read in id
  order, PUBACK, the ``StoredAck`` of :class:`bench.stored_acks.StoredAcker` standing in
  for the ingest, batched deletes): events/s, and ``ratio_vs_baseline`` (target: >= 2,000
  events/s absolute). The baseline waits for PUBACKs only, so the ratio includes the
  cost of end-to-end acknowledgement.
* ``backlog``: ``--backlog`` events waiting on disk (a long dead zone) drained after
  the broker comes up: seconds, events/s, and the process RSS sampled every 100 ms
  (start / peak / end in MiB, and peak - start): the backlog lives on disk, so RSS
  must stay flat.
* ``emit``: latency of ``OutboxSink.emit`` with evidence (a durable SQLite commit each)
  while the publisher drains: p50 / p99 in ms; this is what the detection loop pays.

Backlogs are written with ``Outbox.put`` in batches (one commit per 1,000 events)
to build them quickly; ``emit`` commits once per event.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench.stored_acks import StoredAcker
from demo.mosquitto import MosquittoBroker
from edge.config import MqttSinkConfig
from edge.interfaces import Evidence
from edge.mqtt import OutboxSink
from edge.outbox import Outbox, OutboxLimits, OutboxMessage
from streetwatch.events import EvidenceRef, ViolationEvent
from streetwatch.topics import events_topic

DEVICE = "bench-01"
TARGET_EVENTS_PER_S = 2000.0
T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


def make_event(i: int, evidence: EvidenceRef | None = None) -> ViolationEvent:
    observed = T0 + timedelta(milliseconds=i)
    return ViolationEvent.model_validate(
        {
            "event_id": uuid.uuid4(),
            "device_id": DEVICE,
            "track_id": uuid.uuid4(),
            "sequence": 0,
            "lifecycle": "new",
            "violation_type": "street_vending",
            "candidate": True,
            "detector_class": "umbrella",
            "score": 0.7,
            "box": (100.0, 100.0, 300.0, 400.0),
            "frame_width": 1280,
            "frame_height": 720,
            "observed_at": observed,
            "first_seen_at": observed,
            "frames_seen": 3,
            "position": {"lat": 31.2, "lon": 121.4, "accuracy_m": 4.0, "source": "nmea"},
            "model": {"name": "coco-yolov8n", "version": "1"},
            "evidence": evidence.model_dump() if evidence else None,
        }
    )


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return 0.0


class RssSampler:
    def __init__(self, every_s: float = 0.1) -> None:
        self.samples: list[float] = []
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mib())
            self._stop.wait(self._every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(rss_mib())


def sink_config(port: int, outbox: Path, window: int) -> MqttSinkConfig:
    return MqttSinkConfig.model_validate(
        {
            "kind": "mqtt",
            "host": "127.0.0.1",
            "port": port,
            "reconnect_min_s": 0.1,
            "reconnect_max_s": 1.0,
            "inflight_window": window,
            "telemetry_interval_s": 3600,
            "outbox": {"path": str(outbox), "max_bytes": 4 * 1024**3},
        }
    )


def prefill(path: Path, count: int) -> int:
    """Write ``count`` events into an outbox file in batches; return the payload bytes."""
    outbox = Outbox(path, OutboxLimits(max_bytes=4 * 1024**3, max_age_s=86400))
    topic = events_topic(DEVICE)
    total = 0
    template = make_event(0).to_json()
    at = template.index(b'"event_id":"') + len(b'"event_id":"')
    old_id = template[at : at + 36]
    for start in range(0, count, 1000):
        batch = []
        for i in range(start, min(count, start + 1000)):
            # A fresh event_id per message, without paying pydantic per row.
            payload = template.replace(old_id, str(uuid.UUID(int=i)).encode(), 1)
            batch.append(OutboxMessage("event", topic, payload))
            total += len(payload)
        outbox.put(batch)
    outbox.close()
    return total


def drain(port: int, path: Path, window: int, timeout: float) -> tuple[float, list[float]]:
    """Start a sink over a filled outbox; return (seconds until empty, RSS samples)."""
    with RssSampler() as sampler:
        start = time.perf_counter()
        sink = OutboxSink.open(sink_config(port, path, window), device_id=DEVICE)
        if not sink.wait_until_delivered(timeout):
            sink.close()
            raise SystemExit(f"the outbox did not drain within {timeout} s")
        seconds = time.perf_counter() - start
        sink.close()
    return seconds, sampler.samples


def raw_paho(port: int, count: int, window: int) -> float:
    """Baseline: QoS 1 publishes straight from memory, same window; seconds until all acked.

    The publisher blocks while ``window`` messages await their PUBACK (as the outbox
    publisher does) instead of queueing everything inside paho.
    """
    acked = threading.Event()
    room = threading.Semaphore(window)
    done = [0]

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        room.release()
        done[0] += 1
        if done[0] == count:
            acked.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-raw", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(window)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = make_event(0).to_json()
    topic = events_topic("bench-raw")
    start = time.perf_counter()
    for _ in range(count):
        room.acquire()
        client.publish(topic, payload, qos=1)
    if not acked.wait(120):
        raise SystemExit("raw paho baseline did not finish")
    seconds = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return seconds


def emit_latency(port: int, path: Path, count: int) -> list[float]:
    frame = b"\xff\xd8" + bytes(range(256)) * 600  # ~150 kB, like a 1280-wide JPEG
    sink = OutboxSink.open(sink_config(port, path, 100), device_id=DEVICE)
    times = []
    for i in range(count):
        crop = frame[:20_000] + i.to_bytes(4, "big")
        unique_frame = frame + i.to_bytes(4, "big")
        ref = EvidenceRef(
            frame_sha256=hashlib.sha256(unique_frame).hexdigest(),
            frame_bytes=len(unique_frame),
            crop_sha256=hashlib.sha256(crop).hexdigest(),
            crop_bytes=len(crop),
            captured_at=T0,
        )
        event = make_event(i, ref)
        start = time.perf_counter()
        sink.emit(event, Evidence(frame_jpeg=unique_frame, crop_jpeg=crop, ref=ref))
        times.append((time.perf_counter() - start) * 1000)
    sink.wait_until_delivered(60)
    sink.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="Print JSON (the only output format).")
    parser.add_argument("--backlog", type=int, default=100_000, help="Events in the large backlog.")
    parser.add_argument("--small", type=int, default=20_000, help="Events in the baseline comparison.")
    parser.add_argument("--window", type=int, default=100, help="In-flight window for both.")
    parser.add_argument("--emits", type=int, default=200, help="emit() calls timed with evidence.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        work = Path(tmp)
        with MosquittoBroker(work / "broker") as broker, StoredAcker(broker.port):
            backlog_path = work / "backlog.sqlite3"
            backlog_bytes = prefill(backlog_path, args.backlog)
            backlog_s, rss = drain(broker.port, backlog_path, args.window, timeout=600)

            small_path = work / "small.sqlite3"
            prefill(small_path, args.small)
            outbox_s, _ = drain(broker.port, small_path, args.window, timeout=300)
            raw_s = raw_paho(broker.port, args.small, args.window)

            emit_ms = emit_latency(broker.port, work / "emit.sqlite3", args.emits)

    outbox_rate = args.small / outbox_s
    raw_rate = args.small / raw_s
    result = {
        "benchmark": "outbox",
        "window": args.window,
        "baseline": {
            "what": "raw paho QoS 1, no outbox",
            "events": args.small,
            "events_per_s": round(raw_rate),
        },
        "outbox": {
            "events": args.small,
            "events_per_s": round(outbox_rate),
            "ratio_vs_baseline": round(outbox_rate / raw_rate, 3),
            "target_events_per_s": TARGET_EVENTS_PER_S,
            "meets_target": outbox_rate >= TARGET_EVENTS_PER_S,
        },
        "backlog": {
            "events": args.backlog,
            "payload_mib": round(backlog_bytes / 1024**2, 1),
            "drain_s": round(backlog_s, 2),
            "events_per_s": round(args.backlog / backlog_s),
            "rss_mib": {
                "start": round(rss[0], 1),
                "peak": round(max(rss), 1),
                "end": round(rss[-1], 1),
                "peak_minus_start": round(max(rss) - rss[0], 1),
                "samples": len(rss),
            },
        },
        "emit": {
            "calls": args.emits,
            "evidence_kib_per_event": round((256 * 600 + 2 + 20_000) / 1024),
            "p50_ms": round(statistics.median(emit_ms), 2),
            "p99_ms": round(sorted(emit_ms)[int(0.99 * (len(emit_ms) - 1))], 2),
        },
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())

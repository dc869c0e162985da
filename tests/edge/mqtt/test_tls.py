"""The shipped broker config (deploy/mosquitto/) starts as written; a box delivers over TLS through it,
with publishes coming from several of its threads at once."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from server.settings import MqttSettings
from streetwatch.topics import subscription, telemetry_topic
from tests.edge.mqtt.support import Collector, event_id, make_event, make_evidence, sink_config
from tests.support.shipped_broker import ShippedBroker, start_shipped_broker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        shutil.which("openssl") is None, reason="needs the openssl command to make certificates"
    ),
]

DEVICE = "van-61"
INGEST = "ingest-1"

#: What Mosquitto logs when the bytes of a TLS stream arrive mangled or a packet makes no sense.
STREAM_DAMAGE = re.compile(r"bad record mac|decryption failed|protocol error|malformed|socket error", re.I)


def ingest_stand_in(broker: ShippedBroker) -> Collector:
    """Reads like the ingest (through the shared group, as its login) and acknowledges what it stores."""
    group = MqttSettings().share_group
    kinds = ("events", "evidence", "status", "telemetry")
    return Collector(
        broker.port,
        INGEST,
        "ingest-pw",
        client_id=INGEST,
        subscriptions=tuple(f"$share/{group}/{subscription(kind)}" for kind in kinds),
    )


def tls_sink(broker: ShippedBroker, tmp_path: Path) -> OutboxSink:
    config = sink_config(
        broker.tls_port,
        tmp_path / "outbox.sqlite3",
        password="device-pw",
        tls={"ca_file": str(broker.etc / "ca.crt")},
    )
    return OutboxSink.open(config, device_id=DEVICE)


def test_box_delivers_over_tls_through_the_shipped_config(tmp_path: Path) -> None:
    broker = start_shipped_broker(tmp_path, {DEVICE: "device-pw"}, {INGEST: "ingest-pw"})
    server = ingest_stand_in(broker)
    sink = tls_sink(broker, tmp_path)
    try:
        assert server.subscribed.wait(5)
        sink.emit(make_event(DEVICE, 0), None)
        assert sink.wait_until_delivered(10), "the server's acknowledgement did not come back over TLS"
        assert server.wait_for(lambda c: c.events == [str(event_id(DEVICE, 0))], 5)
    finally:
        sink.close()
        server.close()
        broker.stop()


def test_publishes_from_several_threads_at_once_keep_the_tls_stream_intact(tmp_path: Path) -> None:
    broker = start_shipped_broker(tmp_path, {DEVICE: "device-pw"}, {INGEST: "ingest-pw"})
    server = ingest_stand_in(broker)
    sink = tls_sink(broker, tmp_path)
    count, reports_per_thread, threads = 60, 150, 3
    try:
        assert server.subscribed.wait(5)
        assert server.wait_for(lambda c: bool(c.status), 10)  # the box is connected
        go = threading.Event()

        def reporter(n: int) -> None:  # what the reporter and command threads do: publish directly
            go.wait()
            for i in range(reports_per_thread):
                payload = b'{"filler": "%s"}' % (b"%d-%d-" % (n, i) * 3000)  # ~20-30 kB: long writes
                sink.link.connection.publish(telemetry_topic(DEVICE), payload)

        workers = [threading.Thread(target=reporter, args=(n,)) for n in range(threads)]
        for worker in workers:
            worker.start()
        go.set()
        for i in range(count):  # meanwhile the outbox publisher sends events with their images
            evidence = make_evidence(i, size=60_000)
            sink.emit(make_event(DEVICE, i, evidence.ref), evidence)
        for worker in workers:
            worker.join(60)
        assert sink.wait_until_delivered(30)
        expected = {str(event_id(DEVICE, i)) for i in range(count)}
        assert server.wait_for(lambda c: expected <= set(c.events), 10)
        assert server.wait_for(lambda c: len(c.telemetry) == threads * reports_per_thread, 20)
    finally:
        sink.close()
        server.close()
        broker.stop()
    log = broker.log.read_text(errors="replace")
    damage = [line for line in log.splitlines() if STREAM_DAMAGE.search(line)]
    assert damage == [], "\n".join(damage[:5])
    assert log.count(f" as {DEVICE} (") == 1, "the box's TLS connection broke and was made again"

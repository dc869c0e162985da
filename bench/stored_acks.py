"""A stand-in for the server's acknowledgements in benchmarks: a real MQTT client that subscribes to
the boxes' events and images and answers with ``StoredAck`` batches, as the ingest does after its commit.

    with StoredAcker(port):     # runs ``python -m bench.stored_acks --port P`` in its own process
        ...  # boxes on this broker now see their rows acknowledged and deleted

It stores nothing; it measures the box's side of end-to-end delivery (PUBACK, then the
server's acknowledgement, then the delete), not the server's. It runs in its own process,
as the server does, so it does not share the measured process's interpreter lock.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from typing import Any

import paho.mqtt.client as mqtt

from streetwatch.messages import stored_ack_batches
from streetwatch.topics import acks_topic, parse_topic, subscription


class StoredAcker:
    """Starts the acknowledging client in a child process and stops it on exit."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> StoredAcker:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.stored_acks", "--port", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "subscribed":
            self.proc.kill()
            raise SystemExit("the acknowledging stand-in could not subscribe")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)


class _Acker:
    def __init__(self, port: int, every_s: float = 0.02) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, tuple[list[str], list[str]]] = {}
        self._every_s = every_s
        self._stop = threading.Event()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="bench-acker", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_connect = lambda c, *_: c.subscribe(
            [(subscription("events"), 1), (subscription("evidence"), 1)]
        )
        self.client.connect("127.0.0.1", port)
        self._thread = threading.Thread(target=self._flush_loop, name="bench-acker", daemon=True)

    def run(self) -> int:
        self.client.loop_start()
        self._thread.start()
        if not self.subscribed.wait(10):
            return 1
        print("subscribed", flush=True)
        signal.sigwait({signal.SIGTERM, signal.SIGINT})
        self._stop.set()
        self._thread.join()
        self.client.loop_stop()
        self.client.disconnect()
        return 0

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = parse_topic(message.topic)
        with self._lock:
            events, hashes = self._pending.setdefault(topic.device_id, ([], []))
            if topic.sha256 is not None:
                hashes.append(topic.sha256)
            else:
                # The event_id without a full parse: the ingest's own cost is not what is measured here.
                payload = bytes(message.payload)
                at = payload.index(b'"event_id":"') + len(b'"event_id":"')
                events.append(payload[at : at + 36].decode())

    def _flush_loop(self) -> None:
        while not self._stop.wait(self._every_s):
            with self._lock:
                batches, self._pending = self._pending, {}
            for device, (events, hashes) in batches.items():
                for ack in stored_ack_batches(events, hashes):
                    self.client.publish(acks_topic(device), ack.to_json(), qos=1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True, help="Broker port on 127.0.0.1.")
    args = parser.parse_args()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # sigwait takes them
    return _Acker(args.port).run()


if __name__ == "__main__":
    sys.exit(main())

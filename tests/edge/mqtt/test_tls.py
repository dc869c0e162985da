"""The shipped broker config (deploy/mosquitto/) starts as written, and a box connects over TLS."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edge.mqtt import MqttSink
from streetwatch.mosquitto import free_port, write_password_file
from streetwatch.paths import deploy_dir
from tests.edge.mqtt.support import Collector, event_id, make_event, sink_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(
        shutil.which("openssl") is None, reason="needs the openssl command to make certificates"
    ),
]

DEVICE = "van-61"


def make_certificate(folder: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(folder / "broker.key"),
            "-out",
            str(folder / "broker.crt"),
        ],
        check=True,
        capture_output=True,
    )
    shutil.copy(folder / "broker.crt", folder / "ca.crt")  # self-signed: it is its own CA


def shipped_config(folder: Path, tls_port: int, plain_port: int) -> str:
    text = (deploy_dir() / "mosquitto" / "mosquitto.conf").read_text()
    text = text.replace("/etc/mosquitto/streetwatch", str(folder)).replace(
        "/var/lib/mosquitto/", f"{folder}/"
    )
    text = text.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
    text = text.replace("listener 1883 127.0.0.1", f"listener {plain_port} 127.0.0.1")
    return text.replace("log_dest syslog", f"log_dest file {folder}/shipped.log")


def test_box_delivers_over_tls_through_the_shipped_config(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    make_certificate(folder)
    write_password_file(folder / "passwords", {DEVICE: "device-pw", "ingest": "ingest-pw"})
    shutil.copy(deploy_dir() / "mosquitto" / "acl", folder / "acl")
    tls_port, plain_port = free_port(), free_port()
    broker = MosquittoBroker(tmp_path / "run", port=plain_port)
    run_as = [line for line in broker.conf.read_text().splitlines() if line.startswith("user ")]
    # The shipped file as written; only paths, ports and (under root) the run user change.
    broker.conf.write_text(shipped_config(folder, tls_port, plain_port) + "".join(f"{u}\n" for u in run_as))
    broker.start()
    collector = Collector(plain_port, "ingest", "ingest-pw")
    config = sink_config(
        tls_port, tmp_path / "outbox.sqlite3", password="device-pw", tls={"ca_file": str(folder / "ca.crt")}
    )
    sink = MqttSink(config, device_id=DEVICE)
    try:
        assert collector.subscribed.wait(5)
        sink.emit(make_event(DEVICE, 0), None)
        assert sink.wait_until_delivered(10)
        assert collector.wait_for(lambda c: c.events == [str(event_id(DEVICE, 0))], 5)
    finally:
        sink.close()
        collector.close()
        broker.stop()

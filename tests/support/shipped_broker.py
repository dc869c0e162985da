"""Start Mosquitto from the shipped deploy/mosquitto/mosquitto.conf, as written.

Only paths, ports and (under root) the run user change; the users and their rules come from
:func:`streetwatch.broker_security.write_dynsec_file`, exactly as an operator writes them.

    broker = start_shipped_broker(tmp_path, devices={"van-1": "pw"}, ingest={"ingest-1": "pw"})
    ...  # plain listener on broker.port (loopback, the ingest's), TLS on broker.tls_port
    broker.stop()
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from demo.mosquitto import MosquittoBroker, free_port
from streetwatch.broker_security import write_dynsec_file
from streetwatch.paths import deploy_dir

SHIPPED_CONF = deploy_dir() / "mosquitto" / "mosquitto.conf"
PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"


def make_certificate(folder: Path) -> None:
    """A self-signed broker certificate for 127.0.0.1 (it is its own CA: ca.crt)."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
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
    shutil.copy(folder / "broker.crt", folder / "ca.crt")


def plugin_path() -> str:
    """The plugin of the Debian package; on another architecture, wherever it is installed."""
    if Path(PLUGIN).exists():
        return PLUGIN
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))
    return str(found[0]) if found else PLUGIN


def shipped_config(folder: Path, tls_port: int, plain_port: int) -> str:
    text = SHIPPED_CONF.read_text()
    text = text.replace("/etc/mosquitto/streetwatch", str(folder)).replace(
        "/var/lib/mosquitto/", f"{folder}/"
    )
    text = text.replace(PLUGIN, plugin_path())
    text = text.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
    text = text.replace("listener 1883 127.0.0.1", f"listener {plain_port} 127.0.0.1")
    return text.replace("log_dest syslog", f"log_dest file {folder}/shipped.log")


def shipped_setting(name: str) -> str:
    """The value of one setting in the shipped config (e.g. ``max_queued_bytes``)."""
    for line in SHIPPED_CONF.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == name:
            return parts[1]
    raise KeyError(f"{name} is not set in {SHIPPED_CONF}")


class ShippedBroker(MosquittoBroker):
    """A :class:`MosquittoBroker` whose config is the shipped one; ``tls_port`` is the boxes' listener."""

    def __init__(
        self,
        workdir: Path,
        devices: Mapping[str, str],
        ingest: Mapping[str, str],
        admin: tuple[str, str] | None = None,
    ) -> None:
        self.etc = workdir / "etc"
        self.etc.mkdir(parents=True, exist_ok=True)
        make_certificate(self.etc)
        self.dynsec_file = self.etc / "dynamic-security.json"
        write_dynsec_file(self.dynsec_file, devices, ingest, admin)
        self.tls_port = free_port()
        super().__init__(workdir / "run", port=free_port())
        run_as = [line for line in self.conf.read_text().splitlines() if line.startswith("user ")]
        text = shipped_config(self.etc, self.tls_port, self.port)
        self.conf.write_text(text + "".join(f"{u}\n" for u in run_as))
        self.log = self.etc / "shipped.log"


def start_shipped_broker(
    workdir: Path,
    devices: Mapping[str, str],
    ingest: Mapping[str, str],
    admin: tuple[str, str] | None = None,
) -> ShippedBroker:
    """The shipped config, running (``stop()`` / ``start()`` restart it with the same files and ports)."""
    broker = ShippedBroker(workdir, devices, ingest, admin)
    broker.start()
    return broker

"""The box is SIGKILLed while a new model is on probation: it comes back on the previous model and says so.

The real command line (``streetwatch edge run``) in a subprocess, a real broker and a real
HTTP release server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.updates.state import InstallState
from streetwatch.messages import SendTelemetryCommand
from tests.edge.updates.support import (
    DET_INT8,
    REPLAY,
    REPO,
    FleetClient,
    ReleaseServer,
    box_config,
    model_command,
    write_public_key,
)
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-ota-2"
OLD = [{"name": "streetwatch-det", "version": "1.2.0"}]
NEW = [{"name": "streetwatch-det", "version": "1.3.0-int8"}]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def start(config_file: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "streetwatch.cli", "edge", "run", "--config", str(config_file)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_sigkill_during_probation_comes_back_on_the_previous_model(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    box_dir = tmp_path / "box"
    config = box_config(
        box_dir, broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"), probation_s=120.0
    )
    raw = config.model_dump(mode="json")
    raw["source"] = {"kind": "images", "uri": str(REPLAY), "loop": True}
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    log = tmp_path / "edge.log"
    (tmp_path / "releases").mkdir()
    server = ReleaseServer(tmp_path / "releases")
    fleet = FleetClient(broker.port, DEVICE)
    first = start(config_file, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        assert fleet.wait(lambda f: bool(f.status) and _running(f.status[-1]), 30), log.read_text()
        assert fleet.models() == OLD
        command = model_command(server, DET_INT8, key, version="1.3.0-int8")
        fleet.send(command)
        assert fleet.wait(lambda f: any(r["step"] == "swap" for r in f.of(command.command_id)), 60), (
            fleet.of(command.command_id),
            log.read_text()[-3000:],
        )
        assert fleet.wait(lambda f: f.models() == NEW, 10)
        installed = InstallState.load(box_dir / "models").models[config.detectors[0].model]
        assert installed.pending is not None  # on disk before the swap
        pending_file = Path(installed.pending.path)
        assert pending_file.is_file()

        first.send_signal(signal.SIGKILL)  # mid-probation: no chance to roll back by itself
        first.wait(10)
        assert fleet.wait(lambda f: f.status[-1]["state"] == "offline", 30)  # the broker's last will

        second = start(config_file, log)
        assert fleet.wait(lambda f: _running(f.status[-1]), 30), log.read_text()[-3000:]
        assert fleet.models() == OLD
        final = fleet.final(command.command_id, timeout=30)
        assert final["state"] == "failed" and final["step"] == "probation", final
        assert "restarted while streetwatch-det 1.3.0-int8 was on probation" in final["reason"]

        for attempt in range(15):  # the restarted box processes frames on the old model
            fleet.send(SendTelemetryCommand(command_id=f"t-after-{attempt}"))
            if fleet.wait(lambda f: any(t["frames"] > 0 for t in f.telemetry), 2):
                break
        assert any(t["frames"] > 0 for t in fleet.telemetry), "no frames after the restart"
        state = InstallState.load(box_dir / "models")
        slot = state.models[config.detectors[0].model]
        assert slot.pending is None and slot.current is None and not state.unreported
        assert not pending_file.exists()
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
        fleet.close()
        server.close()
    assert second is not None and second.returncode == 0, log.read_text()[-3000:]


def _running(status: dict[str, object]) -> bool:
    """Online with its models loaded (a starting box says online with phase starting and no models)."""
    return status["state"] == "online" and status.get("phase") != "starting"

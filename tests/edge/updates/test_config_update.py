"""``update_config`` on a box run by the real command line: an invalid file is refused, a good one is
applied by an in-process restart, one the pipeline cannot start with is rolled back. The status and
the events name the installed configuration the box runs."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.updates.state import InstallState
from streetwatch.messages import UpdateConfigCommand
from streetwatch.release_signing import Release, sign
from tests.edge.updates.support import REPLAY, FleetClient, ReleaseServer, box_config, write_public_key
from tests.edge.updates.test_update_crash import start
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-ota-3"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def config_command(
    server: ReleaseServer, text: str, key: Ed25519PrivateKey, version: str
) -> UpdateConfigCommand:
    data = text.encode()
    name = f"{uuid.uuid4().hex[:8]}.yaml"
    (server.root / name).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    release = Release(kind="config", name="van-config", version=version, size=len(data), sha256=digest)
    return UpdateConfigCommand(
        command_id=f"c-{uuid.uuid4().hex[:12]}",
        name="van-config",
        version=version,
        url=server.url(name),
        sha256=digest,
        size=len(data),
        signature=sign(key, release),
    )


def restart_seconds(log: Path, version: str) -> float:
    """From the box's log: seconds between 'restarting the pipeline' and 'applied' for ``version``."""
    moments = {}
    for line in log.read_text().splitlines():
        markers = (("stop", f"{version}: restarting the pipeline"), ("up", f"van-config {version} applied"))
        for key, marker in markers:
            if marker in line:
                moments[key] = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f")
    return (moments["up"] - moments["stop"]).total_seconds()


def test_config_updates_are_validated_applied_in_process_and_rolled_back(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    box_dir = tmp_path / "box"
    config = box_config(box_dir, broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"))
    raw: dict[str, Any] = config.model_dump(mode="json")
    raw["source"] = {"kind": "images", "uri": str(REPLAY), "loop": True}
    raw["sink"]["telemetry_interval_s"] = 600  # the old config reports rarely, the new one every second
    config_file = tmp_path / "edge.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    log = tmp_path / "edge.log"
    (tmp_path / "releases").mkdir()
    server = ReleaseServer(tmp_path / "releases")
    fleet = FleetClient(broker.port, DEVICE)
    box = start(config_file, log)
    try:
        assert fleet.wait(lambda f: bool(f.status) and f.status[-1]["state"] == "online", 30), log.read_text()
        assert fleet.wait(lambda f: bool(f.events), 60), "the replay raised no event"
        assert fleet.events[0]["config"] is None and fleet.status[-1]["config"] is None  # its own file

        invalid = dict(raw, tracker={"high_thresh": 0.5, "colour": "red"})
        bad = config_command(server, yaml.safe_dump(invalid), key, "2")
        fleet.send(bad)
        final = fleet.final(bad.command_id)
        assert final["state"] == "failed" and final["step"] == "validate", final
        assert "tracker.colour" in final["reason"]

        good = dict(raw, sink=dict(raw["sink"], telemetry_interval_s=1))
        command = config_command(server, yaml.safe_dump(good), key, "3")
        fleet.send(command)
        final = fleet.final(command.command_id, timeout=60)
        assert final["state"] == "done" and final["step"] == "apply", (final, log.read_text()[-2000:])
        assert fleet.wait(lambda f: sum(t["frames"] > 0 for t in f.telemetry) >= 2, 20)  # the new config runs
        slot = InstallState.load(box_dir / "configs").models["config"]
        assert slot.current is not None and slot.current.version == "3" and slot.pending is None
        three = {"name": "van-config", "version": "3"}
        assert fleet.wait(lambda f: f.status[-1]["config"] == three, 10), fleet.status[-1]
        # Events raised from now on name it (the outbox may still re-send older ones, which do not).
        assert fleet.wait(lambda f: any(e["config"] == three for e in f.events), 60), "no event under 3"
        gap = restart_seconds(log, "3")
        print(f"in-process restart with configuration 3: {gap:.2f} s from stop to running again")
        assert gap < 3.0, f"the restart took {gap:.1f} s"

        broken_model = tmp_path / "broken.onnx"
        broken_model.write_bytes(b"not a model")
        unstartable = dict(good, detectors=[dict(good["detectors"][0], model=str(broken_model))])
        command = config_command(server, yaml.safe_dump(unstartable), key, "4")
        fleet.send(command)
        final = fleet.final(command.command_id, timeout=60)
        assert final["state"] == "failed" and "did not start with it" in final["reason"], final
        seen = len(fleet.telemetry)
        assert fleet.wait(lambda f: len(f.telemetry) >= seen + 2, 20), "the previous config is not back"
        assert fleet.telemetry[-1]["frames"] > 0
        slot = InstallState.load(box_dir / "configs").models["config"]
        assert slot.current is not None and slot.current.version == "3" and slot.pending is None
        assert fleet.status[-1]["config"] == three  # rolled back to 3, and it says so
    finally:
        if box.poll() is None:
            box.send_signal(signal.SIGINT)
            try:
                box.wait(20)
            except subprocess.TimeoutExpired:
                box.kill()
        fleet.close()
        server.close()
    assert box.returncode == 0, log.read_text()[-3000:]

"""Over-the-air model updates on a running box: real Mosquitto, a real HTTP release server, real models.

A good update is swapped in while the box keeps publishing events; every bad one is refused
or rolled back with a clear ``failed`` reply while the old model keeps running.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import DeviceConfig
from edge.mqtt import OutboxSink
from edge.pipeline import EdgePipeline, from_config
from edge.updates.state import InstallState
from tests.edge.mqtt.support import Collector
from tests.edge.updates.support import (
    DET_INT8,
    FleetClient,
    PacedSource,
    ReleaseServer,
    box_config,
    constant_model,
    model_command,
    one_box_output,
    raising_model,
    stalling_model,
    write_public_key,
    wrong_shape_model,
)
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

DEVICE = "van-ota-1"
OLD = {"name": "streetwatch-det", "version": "1.2.0"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path_factory.mktemp("broker")) as running:
        yield running


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def fleet(broker: MosquittoBroker) -> Iterator[FleetClient]:
    client = FleetClient(broker.port, DEVICE)
    yield client
    client.close()


@dataclass
class Box:
    pipeline: EdgePipeline
    source: PacedSource
    thread: threading.Thread
    frame_times: list[float] = field(default_factory=list)

    def frames_after(self, moment: float) -> int:
        return sum(1 for t in list(self.frame_times) if t > moment)

    def stop(self) -> None:
        assert isinstance(self.pipeline.sink, OutboxSink)
        self.pipeline.sink.drain_on_close_s = 0.0  # no ingest acks these
        self.pipeline.stop()
        self.thread.join(30)


def start_box(config: DeviceConfig, source: PacedSource, fleet: FleetClient) -> Box:
    pipeline = from_config(config, source=source)
    box = Box(pipeline, source, threading.Thread(target=pipeline.run, daemon=True))
    assert pipeline.link is not None
    telemetry = pipeline.link.telemetry
    note = telemetry.note_frame

    def timed(count: int = 1) -> None:  # when each frame finished the events stage
        box.frame_times.append(time.monotonic())
        note(count)

    telemetry.note_frame = timed
    box.thread.start()
    assert fleet.wait(lambda f: bool(f.status) and f.status[-1]["state"] == "online", 10)
    assert fleet.wait(lambda _f: len(box.frame_times) >= 3, 20), "the box processes no frames"
    return box


@pytest.fixture
def grey_box(
    tmp_path: Path, broker: MosquittoBroker, key: Ed25519PrivateKey, fleet: FleetClient
) -> Iterator[Box]:
    config = box_config(tmp_path / "box", broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"))
    box = start_box(config, PacedSource(fps=10, photos=False), fleet)
    yield box
    box.stop()


def assert_old_model_still_runs(box: Box, fleet: FleetClient, within: float = 10) -> None:
    moment = time.monotonic()
    assert fleet.wait(lambda _f: box.frames_after(moment) >= 5, within), "frames stopped after the refusal"
    assert box.pipeline.detectors[0].info.ref.model_dump() == OLD
    assert fleet.models() == [OLD]


def test_a_good_update_swaps_in_while_events_keep_flowing(
    tmp_path: Path, broker: MosquittoBroker, key: Ed25519PrivateKey, fleet: FleetClient, server: ReleaseServer
) -> None:
    collector = Collector(broker.port)  # plays the server's ingest: receives and acknowledges events
    assert collector.subscribed.wait(5)
    config = box_config(tmp_path / "box", broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"))
    box = start_box(config, PacedSource(fps=8, photos=True), fleet)
    try:
        assert fleet.models() == [OLD]
        time.sleep(2.0)  # events flow on the old model first
        started = time.monotonic()
        command = model_command(server, DET_INT8, key, version="1.3.0-int8")
        fleet.send(command)
        final = fleet.final(command.command_id)
        assert final["state"] == "done", final
        finished = time.monotonic()
        steps = [(r["state"], r["step"]) for r in fleet.of(command.command_id)]
        assert steps[0] == ("accepted", None)
        for step in ("download", "verify", "probe", "swap"):
            assert ("progress", step) in steps, steps
        assert steps[-1] == ("done", "probation")
        assert fleet.wait(lambda f: f.models() == [{"name": "streetwatch-det", "version": "1.3.0-int8"}], 5)

        time.sleep(3.0)  # new tracks start on the new model
        sink = box.pipeline.sink
        assert isinstance(sink, OutboxSink) and sink.wait_until_delivered(20)
    finally:
        box.stop()
        collector.close()

    # No frame gap beyond a few frame intervals while downloading, probing and swapping.
    times = [t for t in box.frame_times if started - 0.5 <= t <= finished + 0.5]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    interval = 1 / 8
    print(
        f"frames during the update: {len(times)}, longest gap {max(gaps):.3f} s ({max(gaps) / interval:.1f})"
    )
    assert max(gaps) <= 5 * interval + 0.25, f"a frame gap of {max(gaps):.2f} s during the update"
    # No event lost: every event the pipeline handed over reached the server, some named the new model.
    emitted = box.pipeline.stats.events
    assert emitted > 0 and len(set(collector.events)) == emitted
    assert box.pipeline.stats.errors == 0
    assert box.pipeline.rules._models[0].version == "1.3.0-int8"  # new violations name the new model
    state = InstallState.load(tmp_path / "box" / "models")
    slot = state.models[config.detectors[0].model]
    assert slot.current is not None and slot.current.version == "1.3.0-int8" and slot.pending is None


def test_a_download_cut_halfway_is_refused_then_resumes_from_where_it_stopped(
    grey_box: Box, key: Ed25519PrivateKey, fleet: FleetClient, server: ReleaseServer
) -> None:
    size = DET_INT8.stat().st_size
    server.cut_at = size // 2
    first = model_command(server, DET_INT8, key, version="1.3.0-int8")
    fleet.send(first)
    failed = fleet.final(first.command_id)
    assert failed["state"] == "failed" and failed["step"] == "download"
    assert f"of {size} bytes" in failed["reason"] and "resumes next time" in failed["reason"]
    assert_old_model_still_runs(grey_box, fleet)

    server.cut_at = None
    server.requests.clear()
    again = model_command(server, DET_INT8, key, version="1.3.0-int8")
    fleet.send(again)
    assert fleet.final(again.command_id)["state"] == "done"
    assert [r["range"] for r in server.requests] == [f"bytes={size // 2}-"]  # resumed, not started over
    assert fleet.models() == [{"name": "streetwatch-det", "version": "1.3.0-int8"}]


@pytest.mark.parametrize(
    ("case", "step", "reason"),
    [
        ("wrong hash", "verify", "hashes to"),
        ("bad signature", "verify", "not base64"),
        ("tampered fields", "verify", "signature does not match"),
        ("another key", "verify", "signature does not match"),
        ("not an onnx", "probe", "does not load"),
        ("wrong output shape", "probe", "no decoder understands an output of shape"),
        ("no token", "download", "HTTP 401"),
        ("NaN outputs", "probe", "NaN or infinite"),
        ("other classes", "probe", "'signboard', 'truck'] are not classes of model streetwatch-det"),
        ("wildly different", "probe", "objects where the running one found 0, 100% of them different"),
    ],
)
def test_bad_releases_are_refused_and_the_old_model_keeps_running(
    case: str,
    step: str,
    reason: str,
    grey_box: Box,
    key: Ed25519PrivateKey,
    fleet: FleetClient,
    server: ReleaseServer,
    tmp_path: Path,
) -> None:
    file = DET_INT8
    if case == "not an onnx":
        file = tmp_path / "garbage.onnx"
        file.write_bytes(b"\x08\x01this is not a protobuf model" * 100)
    elif case == "wrong output shape":
        file = wrong_shape_model(tmp_path / "wrong.onnx")
    elif case == "NaN outputs":
        file = constant_model(tmp_path / "nan.onnx", np.full((1, 12, 3549), np.nan, dtype=np.float32))
    elif case == "other classes":
        others = str(dict(enumerate(f"class{i}" for i in range(8))))
        file = constant_model(tmp_path / "others.onnx", np.zeros((1, 12, 3549), np.float32), names=others)
    elif case == "wildly different":  # a box on every frame where the running model sees nothing
        file = constant_model(tmp_path / "boxes.onnx", one_box_output())
    if case == "wrong hash":  # signed, but over a hash the file does not have
        command = model_command(server, file, key, version="9", sha256="0" * 64)
    elif case == "bad signature":
        command = model_command(server, file, key, version="9", signature="not base64 at all!")
    elif case == "tampered fields":  # a valid signature of another version
        signed = model_command(server, file, key, version="9")
        command = signed.model_copy(update={"version": "10"})
    elif case == "another key":
        command = model_command(server, file, Ed25519PrivateKey.generate(), version="9")
    else:
        command = model_command(server, file, key, version="9")
    if case == "no token":
        server.token = "another-box-token"
    fleet.send(command)
    final = fleet.final(command.command_id)
    assert final["state"] == "failed", final
    assert final["step"] == step and reason in final["reason"], final
    if step == "verify" and case != "wrong hash":
        assert not server.requests, "a release with a bad signature must not be downloaded"
    assert_old_model_still_runs(grey_box, fleet)


def test_a_model_that_raises_during_probation_is_rolled_back(
    tmp_path: Path, broker: MosquittoBroker, key: Ed25519PrivateKey, fleet: FleetClient, server: ReleaseServer
) -> None:
    config = box_config(
        tmp_path / "box", broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"), probation_s=30.0
    )
    box = start_box(config, PacedSource(fps=10, photos=False), fleet)
    try:
        command = model_command(server, raising_model(tmp_path / "raises.onnx"), key, version="2.0.0")
        fleet.send(command)
        assert fleet.wait(lambda f: any(r["step"] == "swap" for r in f.of(command.command_id)), 30)
        assert fleet.wait(lambda f: f.models() == [{"name": "streetwatch-det", "version": "2.0.0"}], 5)
        box.source.white.set()  # the camera sees something the new model cannot take
        final = fleet.final(command.command_id, timeout=20)
        assert final["state"] == "failed" and final["step"] == "probation", final
        assert "rolled back to streetwatch-det 1.2.0" in final["reason"] and "Gather" in final["reason"]
        assert fleet.wait(lambda f: f.models() == [OLD], 5)
        assert_old_model_still_runs(box, fleet)
        slot = InstallState.load(tmp_path / "box" / "models").models[config.detectors[0].model]
        assert slot.pending is None and slot.current is None  # still the configured file
        assert not list((tmp_path / "box" / "models").rglob("*.onnx"))  # the bad model is gone
    finally:
        box.stop()


def test_a_model_that_stalls_during_probation_is_rolled_back(
    tmp_path: Path, broker: MosquittoBroker, key: Ed25519PrivateKey, fleet: FleetClient, server: ReleaseServer
) -> None:
    config = box_config(
        tmp_path / "box",
        broker.port,
        DEVICE,
        write_public_key(key, tmp_path / "fleet.pub"),
        probation_s=30.0,
        stall_s=1.0,
    )
    box = start_box(config, PacedSource(fps=10, photos=False), fleet)
    try:
        command = model_command(server, stalling_model(tmp_path / "stalls.onnx"), key, version="2.1.0")
        fleet.send(command)
        assert fleet.wait(lambda f: any(r["step"] == "swap" for r in f.of(command.command_id)), 30)
        box.source.white.set()  # each white frame keeps the new model busy for seconds
        final = fleet.final(command.command_id, timeout=20)
        assert final["state"] == "failed" and final["step"] == "probation", final
        assert "stalled: an inference has not returned for" in final["reason"]
        assert fleet.wait(lambda f: f.models() == [OLD], 5)
        # Once the stuck call returns (one inference worker here), the frames that waited for the
        # stalled model go to the old one.
        assert_old_model_still_runs(box, fleet, within=30)
    finally:
        box.stop()


def test_a_model_much_slower_than_the_old_one_is_rolled_back_after_its_probation_frames(
    tmp_path: Path, broker: MosquittoBroker, key: Ed25519PrivateKey, fleet: FleetClient, server: ReleaseServer
) -> None:
    config = box_config(tmp_path / "box", broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"))
    box = start_box(config, PacedSource(fps=10, photos=False), fleet)
    try:
        slow = stalling_model(tmp_path / "slow.onnx", turns=300)  # ~0.7 s a white frame: slow, no stall
        command = model_command(server, slow, key, version="2.2.0")
        fleet.send(command)
        assert fleet.wait(lambda f: any(r["step"] == "swap" for r in f.of(command.command_id)), 30)
        box.source.white.set()
        final = fleet.final(command.command_id, timeout=60)
        assert final["state"] == "failed" and final["step"] == "probation", final
        assert "it is too slow" in final["reason"] and "updates.max_slowdown is 3" in final["reason"]
        assert fleet.wait(lambda f: f.models() == [OLD], 5)
        assert_old_model_still_runs(box, fleet, within=30)
    finally:
        box.stop()


def test_an_update_refuses_a_box_running_the_model_it_names_twice(
    tmp_path: Path, broker: MosquittoBroker, key: Ed25519PrivateKey, fleet: FleetClient, server: ReleaseServer
) -> None:
    # check-config refuses such a config; a box started with it anyway must not replace one of the
    # two at random.
    config = box_config(tmp_path / "box", broker.port, DEVICE, write_public_key(key, tmp_path / "fleet.pub"))
    config = config.model_copy(update={"detectors": [config.detectors[0], config.detectors[0]]})
    box = start_box(config, PacedSource(fps=10, photos=False), fleet)
    try:
        command = model_command(server, DET_INT8, key, version="9")
        fleet.send(command)
        final = fleet.final(command.command_id)
        assert final["state"] == "failed" and final["step"] == "verify", final
        assert "runs 'streetwatch-det' in detectors 0, 1" in final["reason"], final
        assert not server.requests  # refused before anything was downloaded
        assert [d.info.ref.model_dump() for d in box.pipeline.detectors] == [OLD, OLD]
    finally:
        box.stop()

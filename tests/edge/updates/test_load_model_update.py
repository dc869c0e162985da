"""``update_model`` for the truck load classifier: the shipped models, a real HTTP release server, the
box's own pipeline parts (not running: the tests drive the load stage's calls themselves).

A good release is swapped in between calls and survives a restart; every bad one is refused
with the reason while the old classifier keeps answering; a classifier that fails on probation
is swapped back.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from numpy.typing import NDArray
from onnx import TensorProto, helper

from edge.config import DeviceConfig, JsonlSinkConfig, TruckLoadConfig
from edge.mqtt.commands import Replier
from edge.pipeline import EdgePipeline, from_config
from edge.rules import TriggeredEvent
from edge.truck_load import LoadClassifier
from edge.updates.classifier_slot import SwappableClassifier
from edge.updates.models import ModelUpdater, apply_installed_models
from edge.updates.state import InstallState
from streetwatch.paths import repo_root
from tests.edge.updates.support import DET, ReleaseServer, box_config, model_command, write_public_key
from tests.test_events import make_event

LOAD_DIR = repo_root() / "models" / "truck-load"
SHIPPED = LOAD_DIR / "truck-load.onnx"  # 1.1.0
NEW = LOAD_DIR / "truck-load-1.2.0.onnx"
CROPS = Path(__file__).parents[1] / "data" / "truck_load"
NAMES = "{0: 'uncovered', 1: 'covered', 2: 'empty', 3: 'closed', 4: 'not_a_truck'}"
BoxT = tuple[float, float, float, float]
CPU = ["CPUExecutionProvider"]


@dataclass
class Replies:
    sent: list[dict[str, Any]] = field(default_factory=list)
    finished: threading.Event = field(default_factory=threading.Event)

    def __call__(self, command_id: str, type: str, state: str, **fields: Any) -> None:
        self.sent.append({"state": state, **fields})
        if state in ("done", "failed"):
            self.finished.set()

    def final(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.finished.wait(timeout), f"no final reply: {self.sent}"
        return self.sent[-1]


@dataclass
class Box:
    pipeline: EdgePipeline
    updater: ModelUpdater
    configured: DeviceConfig

    def update(self, command: Any) -> dict[str, Any]:
        replies = Replies()
        self.updater.handle(command, Replier(replies, command.command_id, "update_model"))
        return replies.final()

    @property
    def classifier(self) -> SwappableClassifier:
        assert self.updater.load is not None
        return self.updater.load.classifier

    def close(self) -> None:
        self.updater.close()
        self.pipeline.close()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def open_box(tmp_path: Path, key: Ed25519PrivateKey, truck_load: bool = True, **updates: Any) -> Box:
    """The box's parts from its config (models, load stage) and its update handler, not running."""
    public = write_public_key(key, tmp_path / "fleet.pub")
    configured = box_config(tmp_path / "box", 1883, "van-load-1", public, **updates)
    if truck_load:
        # min_score 1: every answer is 'unsure', so every truck leaves the box naming the model.
        load = TruckLoadConfig(model=str(SHIPPED), min_score=1.0)
        configured = configured.model_copy(update={"truck_load": load})
    local = apply_installed_models(configured).model_copy(
        update={"updates": None, "sink": JsonlSinkConfig(path=str(tmp_path / "events.jsonl"))}
    )
    pipeline = from_config(local)
    assert configured.updates is not None
    return Box(pipeline, ModelUpdater(pipeline, configured, configured.updates), configured)


@pytest.fixture
def box(tmp_path: Path, key: Ed25519PrivateKey) -> Iterator[Box]:
    opened = open_box(tmp_path, key)
    yield opened
    opened.close()


def truck(name: str = "covered") -> tuple[NDArray[np.uint8], BoxT]:
    """A real held-out truck crop of the vehicle set (tests/edge/data/truck_load)."""
    import json

    cases = json.loads((CROPS / "boxes.json").read_text())
    stem = next(n for n, c in sorted(cases.items()) if c["label"] == name)
    image = cv2.imread(str(CROPS / f"{stem}.jpg"))
    assert image is not None
    x1, y1, x2, y2 = cases[stem]["box"]
    return np.asarray(image, dtype=np.uint8), (float(x1), float(y1), float(x2), float(y2))


def classifier_onnx(
    path: Path, *, width: int = 5, version: str = "9.0.0", fail_on_white: bool = False
) -> Path:
    """A tiny load classifier with the shipped model's metadata: it answers 'closed' (0.6) whatever the
    crop; ``width`` outputs; with ``fail_on_white`` it fails (Gather out of range) on a crop whose
    brightest pixel is white, and runs fine on darker ones."""
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 128, 128])
    y = helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, width])
    answer = np.full(width, 0.4 / max(1, width - 1), dtype=np.float32)
    answer[min(3, width - 1)] = 0.6
    table = helper.make_tensor("table", TensorProto.FLOAT, [1, 1, width], answer)
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["mx"], keepdims=0),
        helper.make_node("Floor", ["mx"], ["fl"]),  # 0 below white; 1 on white
        helper.make_node("Mul", ["fl", "on"], ["pick"]),
        helper.make_node("Cast", ["pick"], ["idx"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "idx"], ["probs"], axis=0),  # index 1 is out of range
    ]
    on = helper.make_tensor("on", TensorProto.FLOAT, [], [1.0 if fail_on_white else 0.0])
    graph = helper.make_graph(nodes, "load", [x], [y], [table, on])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {"streetwatch_model": "truck-load", "version": version, "task": "classify", "names": NAMES,
            "imgsz": "[128, 128]", "crop_margin": "0.1"}  # fmt: skip
    for k, v in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def test_the_slot_swaps_between_calls_and_each_answer_names_the_model_that_gave_it() -> None:
    old, new = (
        LoadClassifier(SHIPPED, ["CPUExecutionProvider"]),
        LoadClassifier(NEW, ["CPUExecutionProvider"]),
    )
    crop = truck("uncovered")
    expected = {m.label: m.classify(*crop).probabilities for m in (old, new)}
    assert expected[old.label] != expected[new.label]  # the two models tell themselves apart on it
    slot = SwappableClassifier(old)
    answers: list[Any] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def stage() -> None:  # the events thread: one truck after another
        try:
            while not stop.is_set():
                answers.append(slot.classify(*crop))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=stage)
    thread.start()
    try:
        for i in range(40):  # an updater swapping back and forth meanwhile
            slot.swap(new if i % 2 == 0 else old)
            threading.Event().wait(0.005)
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors
    used = {a.model for a in answers}
    assert used == {old.label, new.label}, used
    for answer in answers:  # no answer mixes two models, and none names a model that did not give it
        assert answer.probabilities == expected[answer.model]
    assert slot.label == old.label and slot.generation == 40


def test_a_new_classifier_is_swapped_in_names_new_events_and_is_kept_after_a_restart(
    tmp_path: Path, key: Ed25519PrivateKey, server: ReleaseServer, box: Box
) -> None:
    box.classifier.classify(*truck("covered"))  # a truck seen before the update: the probe compares on it
    reply = box.update(model_command(server, NEW, key, name="truck-load", version="1.2.0"))
    assert reply["state"] == "done" and reply["step"] == "probation", reply
    assert box.classifier.label == "truck-load 1.2.0"
    assert [m.model_dump() for m in box.updater.models()] == [
        {"name": "streetwatch-det", "version": "1.2.0"},
        {"name": "truck-load", "version": "1.2.0"},
    ]
    # The load stage's next truck names it.
    stage = box.pipeline.load_stage
    assert stage is not None
    event = make_event(violation_type="unsealed_truck", detector_class="truck", candidate=True)
    (sent,) = stage.review([TriggeredEvent(event=event, evidence_key=1)], lambda _key: truck())
    assert sent.event.attributes is not None and sent.event.attributes.load_model == "truck-load 1.2.0"
    # Installed for good: a restart loads the new file, under the configured model's key.
    slot = InstallState.load(tmp_path / "box" / "models").models[str(SHIPPED)]
    assert slot.current is not None and slot.current.version == "1.2.0" and slot.pending is None
    box.close()
    restarted = open_box(tmp_path, key)
    try:
        assert restarted.classifier.label == "truck-load 1.2.0"
        assert restarted.configured.truck_load is not None  # the config itself still names the shipped file
        assert restarted.configured.truck_load.model == str(SHIPPED)
        # Deploying what runs answers at once.
        again = restarted.update(model_command(server, NEW, key, name="truck-load", version="1.2.0"))
        assert again["state"] == "done" and again["step"] == "installed", again
    finally:
        restarted.close()


def _corrupt(path: Path) -> Path:
    """The new model cut in half (a disk that filled up while it was exported)."""
    data = NEW.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    ("release", "version", "reason"),
    [
        ("detector", "1.3.0", "does not load as a truck load classifier"),
        ("wrong_width", "9", "3 outputs but 5 class names"),
        ("corrupt", "1.3.0", "does not load as a truck load classifier"),
        (
            "shipped_as_1.3.0",
            "1.3.0",
            "metadata says it is truck-load 1.1.0, the release says truck-load 1.3.0",
        ),
        ("always_closed", "9", "answers 1 of the 1 trucks the box classified last differently from the"),
    ],
)
def test_a_wrong_model_is_refused_by_the_probe_and_the_old_classifier_keeps_answering(
    tmp_path: Path, key: Ed25519PrivateKey, server: ReleaseServer, box: Box, release: str, version: str,
    reason: str,
) -> None:  # fmt: skip
    file = tmp_path / f"{release}.onnx"
    if release == "detector":
        shutil.copyfile(DET, file)
    elif release == "wrong_width":
        classifier_onnx(file, width=3, version=version)
    elif release == "corrupt":
        _corrupt(file)
    elif release == "always_closed":
        classifier_onnx(file, version=version)  # valid, but it calls the last truck (covered) closed
    else:
        shutil.copyfile(SHIPPED, file)
    assert box.classifier.classify(*truck("covered")).load.value == "covered"  # the last truck seen
    reply = box.update(model_command(server, file, key, name="truck-load", version=version))
    assert reply["state"] == "failed" and reply["step"] == "probe", reply
    assert reason in reply["reason"], reply["reason"]
    assert box.classifier.label == "truck-load 1.1.0"
    assert box.classifier.classify(*truck()).model == "truck-load 1.1.0"
    assert not list((tmp_path / "box" / "models").glob("truck-load/*.onnx"))  # the refused file is gone
    assert str(SHIPPED) not in InstallState.load(tmp_path / "box" / "models").models or (
        InstallState.load(tmp_path / "box" / "models").models[str(SHIPPED)].pending is None
    )


def test_a_classifier_that_fails_on_probation_is_swapped_back(
    tmp_path: Path, key: Ed25519PrivateKey, server: ReleaseServer
) -> None:
    # No truck seen yet: the probe tries the model on a grey frame, where it answers fine.
    box = open_box(tmp_path, key, probation_s=30.0)
    try:
        file = classifier_onnx(tmp_path / "fails-on-white.onnx", version="1.3.0", fail_on_white=True)
        replies = Replies()
        command = model_command(server, file, key, name="truck-load", version="1.3.0")
        box.updater.handle(command, Replier(replies, command.command_id, "update_model"))
        assert _wait(lambda: box.classifier.label == "truck-load 1.3.0"), replies.sent
        state = InstallState.load(tmp_path / "box" / "models").models[str(SHIPPED)]
        assert state.pending is not None and state.pending.version == "1.3.0"  # written before the swap
        white = np.full((240, 320, 3), 255, dtype=np.uint8)
        with pytest.raises(Exception, match=r"Gather|indices|out of"):
            box.classifier.classify(white, (40.0, 40.0, 200.0, 160.0))  # a white truck on probation
        reply = replies.final(20)  # well before the 30 s probation ends
        assert reply["state"] == "failed" and reply["step"] == "probation", reply
        assert reply["reason"].startswith("rolled back to truck-load 1.1.0: classification failed"), reply
        assert box.classifier.classify(white, (40.0, 40.0, 200.0, 160.0)).model == "truck-load 1.1.0"
        state = InstallState.load(tmp_path / "box" / "models").models[str(SHIPPED)]
        assert state.pending is None and state.current is None
        assert not list((tmp_path / "box" / "models").glob("truck-load/*.onnx"))
    finally:
        box.close()


def test_a_box_without_a_load_stage_refuses_a_classifier_update(
    tmp_path: Path, key: Ed25519PrivateKey, server: ReleaseServer
) -> None:
    box = open_box(tmp_path, key, truck_load=False)
    try:
        assert box.updater.load is None
        reply = box.update(model_command(server, NEW, key, name="truck-load", version="1.2.0"))
        assert reply["state"] == "failed" and reply["step"] == "verify", reply
        assert "this box runs no load classifier" in reply["reason"], reply["reason"]
        assert server.requests == []  # refused before anything was downloaded
    finally:
        box.close()


def _wait(predicate: Any, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_a_box_that_dies_during_the_probation_comes_back_on_the_old_classifier(
    tmp_path: Path, key: Ed25519PrivateKey, server: ReleaseServer
) -> None:
    state_file = tmp_path / "box" / "models" / "installed.json"
    box = open_box(tmp_path, key, probation_s=30.0)
    try:
        command = model_command(server, NEW, key, name="truck-load", version="1.2.0")
        box.updater.handle(command, Replier(Replies(), command.command_id, "update_model"))
        assert _wait(lambda: box.classifier.label == "truck-load 1.2.0")
        at_the_crash = state_file.read_bytes()  # what a power cut now leaves on the disk
    finally:
        box.close()
    state_file.write_bytes(at_the_crash)
    restarted = open_box(tmp_path, key)
    try:
        assert restarted.classifier.label == "truck-load 1.1.0"
        state = InstallState.load(state_file.parent)
        assert state.models[str(SHIPPED)].pending is None
        (unreported,) = state.unreported  # said to the server once the box is connected
        assert unreported["command_id"] == command.command_id
        assert "restarted while truck-load 1.2.0 was on probation" in unreported["reason"]
    finally:
        restarted.close()

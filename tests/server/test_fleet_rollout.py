"""A rollout end to end: real Mosquitto, the real ingest worker (which sends the waves), the real
HTTP server (downloads with the device's token), and two simulated boxes answering on
``commands/reply`` as the contract says. SQLite and PostgreSQL.

The boxes are simulated because loading and swapping models is the box's side (tested in
tests/edge); what is tested here is everything the server does around them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select, update

from server.app import create_app
from server.auth import Role, create_user
from server.db.models import CommandReply as ReplyRow
from server.db.models import Device, Rollout
from server.db.session import make_engine, session_factory
from server.ingest.worker import IngestWorker
from server.settings import load_settings
from streetwatch.cli import main
from streetwatch.events import utcnow
from streetwatch.messages import CommandReply, StatusMessage, UpdateModelCommand
from streetwatch.release_signing import Release, verify
from streetwatch.releases import load_public_key
from streetwatch.topics import command_replies_topic, commands_topic, status_topic
from tests.fleet.releases_support import MODEL, signed_registry
from tests.server.api.live_server import serve
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

Behaviour = Literal["ok", "fail", "silent"]


@dataclass
class SimulatedBox:
    """Answers ``update_model`` like a box: checks the signature, downloads with its token, replies."""

    device_id: str
    port: int
    token: str
    public_key: Path
    behaviour: Behaviour = "ok"
    commands: list[tuple[float, UpdateModelCommand]] = field(default_factory=list)
    replies: list[tuple[float, CommandReply]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.device_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", self.port)
        self.client.subscribe(commands_topic(self.device_id), qos=1)
        self.client.loop_start()
        status = StatusMessage(
            state="online",
            device_id=self.device_id,
            software_version="0.9.0",
            models=[{"name": MODEL, "version": "1.0.0"}],
            at=utcnow(),
        )
        self.client.publish(status_topic(self.device_id), status.model_dump_json(), qos=1, retain=True)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        command = UpdateModelCommand.model_validate_json(message.payload)
        self.commands.append((time.monotonic(), command))
        # Off the network thread: the box's work takes time and must not block its MQTT loop.
        threading.Thread(target=self._work, args=(command,), daemon=True).start()

    def _reply(
        self, command: UpdateModelCommand, state: str, step: str | None = None, reason: str | None = None
    ) -> None:
        reply = CommandReply.model_validate(
            {"command_id": command.command_id, "device_id": self.device_id, "type": command.type,
             "state": state, "step": step, "reason": reason, "at": utcnow()}
        )  # fmt: skip
        self.replies.append((time.monotonic(), reply))
        self.client.publish(command_replies_topic(self.device_id), reply.model_dump_json(), qos=1)

    def _work(self, command: UpdateModelCommand) -> None:
        if self.behaviour == "silent":
            return
        release = Release("model", command.name, command.version, command.size, command.sha256)
        verify(load_public_key(self.public_key), release, command.signature)
        self._reply(command, "accepted")
        body = httpx.get(command.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30).content
        assert hashlib.sha256(body).hexdigest() == command.sha256
        self._reply(command, "progress", "download")
        if self.behaviour == "fail":
            self._reply(
                command, "failed", "probe", "outputs have shape (1, 7) where (1, 84, 3549) was expected"
            )
            return
        self._reply(command, "done", "probation")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@dataclass
class Fleet:
    config: Path
    boxes: dict[str, SimulatedBox]
    database_url: str


@pytest.fixture
def fleet_factory(migrated_url: str, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    with ExitStack() as stack:

        def make(behaviours: dict[str, Behaviour], reply_timeout_s: float = 60) -> Fleet:
            broker = stack.enter_context(MosquittoBroker(tmp_path / "broker"))
            registry, public, _signed = signed_registry(tmp_path)
            fleet = {"model_registry": str(registry), "public_key": str(public), "advance_every_s": 0.2}
            raw = {
                "database_url": migrated_url,
                "evidence_dir": str(tmp_path / "evidence"),
                "mqtt": {"port": broker.port},
                "limits": {"batch_wait_s": 0.02},
                "fleet": {**fleet, "reply_timeout_s": reply_timeout_s},
            }
            config = tmp_path / "server.yaml"
            config.write_text(yaml.safe_dump(raw))
            # The HTTP server first: its port is the download URL the worker puts in commands.
            port = stack.enter_context(serve(create_app(load_settings(config))))
            raw["fleet"]["download_base_url"] = f"http://127.0.0.1:{port}"  # type: ignore[index]
            config.write_text(yaml.safe_dump(raw))
            engine = make_engine(migrated_url)
            with session_factory(engine)() as session:
                tokens = {d: create_user(session, d, Role.device, utcnow()).token for d in behaviours}
                session.commit()
            engine.dispose()
            worker = IngestWorker(load_settings(config), client_id="ingest-fleet")
            worker.start()
            stack.callback(worker.stop)
            assert worker.wait_subscribed(10)
            boxes = {}
            for device_id, behaviour in behaviours.items():
                boxes[device_id] = SimulatedBox(device_id, broker.port, tokens[device_id], public, behaviour)
                stack.callback(boxes[device_id].close)
            wait_until(lambda: len(device_models(migrated_url)) == len(behaviours))
            return Fleet(config, boxes, migrated_url)

        yield make


def device_models(url: str) -> dict[str, object]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return {d.device_id: d.models for d in session.scalars(select(Device))}
    finally:
        engine.dispose()


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def rollout_row(url: str) -> Rollout:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            rollout = session.scalars(select(Rollout)).one()
            _ = list(rollout.targets)  # loaded before the session closes
            session.expunge_all()
            return rollout
    finally:
        engine.dispose()


def replies_stored(url: str) -> list[tuple[str, str]]:
    engine = make_engine(url)
    try:
        with session_factory(engine)() as session:
            return [(r.device_id, r.state) for r in session.scalars(select(ReplyRow).order_by(ReplyRow.id))]
    finally:
        engine.dispose()


def test_a_rollout_to_two_boxes_goes_canary_first_and_ends_with_both_on_the_new_model(
    fleet_factory: Callable[..., Fleet], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_factory({"van-01": "ok", "van-02": "ok"})
    code = main(
        ["fleet", "deploy", MODEL, "2.0.0", "--devices", "van-01,van-02", "--wait", "--timeout", "60",
         "--config", str(fleet.config)]
    )  # fmt: skip
    assert code == 0
    rollout = rollout_row(fleet.database_url)
    assert (rollout.state, rollout.waves) == ("done", [1, 1])
    assert {t.device_id: (t.state, t.previous_version) for t in rollout.targets} == {
        "van-01": ("done", "1.0.0"),
        "van-02": ("done", "1.0.0"),
    }
    # The second wave went out only after the canary said done.
    canary_done = next(at for at, r in fleet.boxes["van-01"].replies if r.state == "done")
    assert len(fleet.boxes["van-02"].commands) == 1
    assert fleet.boxes["van-02"].commands[0][0] > canary_done
    assert device_models(fleet.database_url) == {
        "van-01": [{"name": MODEL, "version": "2.0.0"}],
        "van-02": [{"name": MODEL, "version": "2.0.0"}],
    }
    wait_until(lambda: len(replies_stored(fleet.database_url)) == 6)
    capsys.readouterr()
    assert main(["fleet", "status", "--config", str(fleet.config)]) == 0
    table = capsys.readouterr().out
    van = next(line for line in table.splitlines() if line.startswith("van-01"))
    assert "ok" in van and f"{MODEL} 2.0.0" in van and "#1 2.0.0 done probation" in van
    assert f"rollout 1: model {MODEL} 2.0.0 to devices van-01,van-02: done, wave 2/2 (2 done)" in table


def test_a_failed_reply_from_the_canary_halts_the_rollout_before_the_next_box_gets_it(
    fleet_factory: Callable[..., Fleet], capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_factory({"van-01": "fail", "van-02": "ok"})
    code = main(
        ["fleet", "deploy", MODEL, "2.0.0", "--devices", "van-01,van-02", "--wait", "--timeout", "60",
         "--config", str(fleet.config)]
    )  # fmt: skip
    assert code == 1
    assert "halted: van-01 failed: outputs have shape (1, 7)" in capsys.readouterr().out
    rollout = rollout_row(fleet.database_url)
    assert rollout.state == "halted"
    assert {t.device_id: (t.state, t.step) for t in rollout.targets} == {
        "van-01": ("failed", "probe"),
        "van-02": ("cancelled", None),
    }
    time.sleep(1.0)  # several advance periods: nothing more may be sent
    assert fleet.boxes["van-02"].commands == []
    assert device_models(fleet.database_url)["van-01"] == [{"name": MODEL, "version": "1.0.0"}]


def test_a_box_that_never_answers_halts_the_rollout_after_the_reply_timeout(
    fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = fleet_factory({"van-01": "silent", "van-02": "ok"}, reply_timeout_s=3)
    code = main(
        ["fleet", "deploy", MODEL, "2.0.0", "--devices", "van-01,van-02", "--wait", "--timeout", "60",
         "--config", str(fleet.config)]
    )  # fmt: skip
    assert code == 1
    rollout = rollout_row(fleet.database_url)
    assert rollout.halted_reason is not None and rollout.halted_reason.startswith(
        "van-01 timeout: no reply for 3 s"
    )
    assert fleet.boxes["van-02"].commands == []

    # The box is back: resuming sends it the update again, under a new command id, and goes on.
    # The 3 s that halted it are not what this part tests: on a loaded machine (a test run beside
    # another) a box answering in steps can take longer, so the resumed rollout waits 60 s.
    fleet.boxes["van-01"].behaviour = "ok"
    engine = make_engine(fleet.database_url)
    with session_factory(engine).begin() as session:
        session.execute(update(Rollout).values(reply_timeout_s=60))
    engine.dispose()
    assert main(["fleet", "resume", str(rollout.id), "--config", str(fleet.config)]) == 0
    wait_until(lambda: rollout_row(fleet.database_url).state == "done", timeout=60)
    first, second = (c.command_id for _, c in fleet.boxes["van-01"].commands)
    assert first != second and len(fleet.boxes["van-02"].commands) == 1

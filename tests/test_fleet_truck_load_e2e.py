"""A truck load classifier rollout end to end, everything real: a box running the edge pipeline with
its load stage on the replay photos, a real Mosquitto, the ingest worker sending the command and
storing replies and events, the HTTP server handing the box the signed file with its own token,
and ``streetwatch fleet deploy truck-load 1.2.0 --wait`` following it to the end. SQLite; about
half a minute on 2 cores (the detector rollout's test, tests/test_fleet_e2e.py, covers waves and
halts; this one what differs for the classifier).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from edge.config import TruckLoadConfig
from edge.pipeline import from_config
from server.auth import Role, create_user
from server.db.models import Device, Event, Rollout
from server.db.session import make_engine, session_factory
from streetwatch.cli import main
from streetwatch.events import utcnow
from streetwatch.paths import repo_root
from streetwatch.releases import generate_keypair, sign_model
from tests.edge.updates.support import PacedSource, box_config
from tests.fleet.server_support import fleet_server, write_fleet_config
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

BOX = "van-01"
MODELS = repo_root() / "models"
SAMPLES = repo_root() / "datasets" / "samples" / "images"
#: Traffic-camera photos whose trucks the shipped detector confirms (tests/edge/test_edge_cli.py).
TRUCK_PHOTOS = ["vehicles_vnv_28_jpg.jpg", "vehicles_vnv_1333_jpg.jpg", "vehicles_vnv_138_jpg.jpg"]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def test_fleet_deploy_swaps_a_running_boxs_load_classifier_and_new_trucks_name_it(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    # The repository's registry and load models, signed with a fresh key.
    models = tmp_path / "models"
    shutil.copytree(MODELS / "truck-load", models / "truck-load", ignore=shutil.ignore_patterns("*.json"))
    shutil.copyfile(MODELS / "registry.json", models / "registry.json")
    private, public = generate_keypair(tmp_path / "keys")
    sign_model(models / "registry.json", "truck-load", "1.2.0", private)

    database, config = write_fleet_config(tmp_path, broker.port, models / "registry.json", public)
    engine = make_engine(database)
    sessions = session_factory(engine)
    with sessions() as session:
        token = create_user(session, BOX, Role.device, utcnow()).token
        session.commit()

    # The box: the shipped detector and load classifier (1.1.0). min_score 1: every truck is sent
    # as a candidate naming the classifier that looked at it (none is silenced).
    box = box_config(tmp_path / BOX, broker.port, BOX, public)
    load = TruckLoadConfig(model=str(MODELS / "truck-load" / "truck-load.onnx"), min_score=1.0)
    box = box.model_copy(update={"truck_load": load})
    assert box.updates is not None and box.updates.http_token_file is not None
    Path(box.updates.http_token_file).write_text(token + "\n")

    def truck_events(version: str) -> int:
        with sessions() as session:
            rows = session.scalars(select(Event).where(Event.violation_type == "unsealed_truck")).all()
            return sum(1 for e in rows if (e.attributes or {}).get("load_model") == f"truck-load {version}")

    with fleet_server(config, "ingest-load-e2e"):
        pipeline = from_config(box, source=truck_camera())
        thread = threading.Thread(target=pipeline.run, daemon=True)
        thread.start()
        try:
            # The server learns from the retained status that the box runs truck-load 1.1.0.
            _wait(lambda: _models(sessions) == {"streetwatch-det": "1.2.0", "truck-load": "1.1.0"}, 60)
            _wait(lambda: truck_events("1.1.0") > 0, 60)  # trucks are classified by the shipped model
            started = time.monotonic()
            code = main(
                ["fleet", "deploy", "truck-load", "1.2.0", "--devices", BOX, "--wait", "--timeout", "120",
                 "--config", str(config)]
            )  # fmt: skip
            assert code == 0
            print(f"deploy --wait took {time.monotonic() - started:.1f} s")
            # A truck the box confirms from now on is classified by 1.2.0, and its event says so.
            _wait(lambda: truck_events("1.2.0") > 0, 60)
            print(f"first truck-load 1.2.0 event {time.monotonic() - started:.1f} s after the deploy began")
        finally:
            pipeline.stop()
            thread.join(30)

    assert _models(sessions) == {"streetwatch-det": "1.2.0", "truck-load": "1.2.0"}
    with sessions() as session:
        (rollout,) = session.scalars(select(Rollout)).all()
        assert (rollout.name, rollout.version, rollout.state) == ("truck-load", "1.2.0", "done")
        (target,) = rollout.targets
        assert (target.state, target.previous_version) == ("done", "1.1.0")
    installed = json.loads((tmp_path / BOX / "models" / "installed.json").read_text())
    assert installed["models"][load.model]["current"]["version"] == "1.2.0"
    engine.dispose()


def truck_camera() -> PacedSource:
    """A camera that sees the sample photos' trucks, each scene for 6 frames, over and over: every
    pass makes new truck tracks, so new trucks keep arriving for the load stage."""
    source = PacedSource(fps=8, photos=False)
    for name in TRUCK_PHOTOS:
        image = cv2.imread(str(SAMPLES / name))
        assert image is not None, name
        source.images += [np.asarray(image, dtype=np.uint8)] * 6
    return source


def _models(sessions: object) -> dict[str, str]:
    with sessions() as session:  # type: ignore[operator]
        device = session.scalar(select(Device).where(Device.device_id == BOX))
        return {m["name"]: m["version"] for m in (device.models if device else None) or []}


def _wait(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.2)

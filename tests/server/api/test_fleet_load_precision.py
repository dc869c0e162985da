"""A truck load classifier rollout: it goes to the boxes that run one, and halts like a detector's when
the new version's live precision drops (its versions are judged on the truck cases whose opening
event they classified, ``load_model``). Real cases, decided through the review API; SQLite and
PostgreSQL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from server.db.models import Device
from server.fleet.precision import precision_by_version
from server.fleet.rollouts import Selection, stage
from server.settings import FleetSettings, ServerSettings
from streetwatch.errors import ConfigError
from streetwatch.events import EventAttributes, TruckLoad
from streetwatch.releases import generate_keypair, sign_model
from tests.server.api.conftest import NOW, Api, advance_rollout, decide, ingest, make_event

LOAD = "truck-load"


def _truck_case(api: Api, east_m: float, version: str) -> int:
    event = make_event(violation_type="unsealed_truck", detector_class="truck", east_m=east_m)
    attributes = EventAttributes(load=TruckLoad.uncovered, load_score=0.9, load_model=f"{LOAD} {version}")
    event = event.model_copy(update={"schema_version": 2, "attributes": attributes})
    (outcome,) = ingest(api, event, now=NOW)
    assert outcome.case_id is not None
    return outcome.case_id


def _settings(api: Api, tmp_path: Path) -> ServerSettings:
    """The server's settings with a registry holding a signed truck-load 2.0.0."""
    models = tmp_path / "models"
    models.mkdir()
    data = b"load-model-2.0.0" * 1000
    (models / "load.onnx").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    entry = {"name": LOAD, "version": "2.0.0", "file": "load.onnx", "sha256": digest}
    (models / "registry.json").write_text(json.dumps({"format": 1, "current": {}, "models": [entry]}))
    private, public = generate_keypair(tmp_path / "keys")
    sign_model(models / "registry.json", LOAD, "2.0.0", private)
    keys = {"model_registry": str(models / "registry.json"), "public_key": str(public)}
    fleet = FleetSettings(**keys, min_reviews=3, precision_margin=0.1)
    return api.settings.model_copy(update={"fleet": fleet})


def test_a_load_classifier_rollout_leaves_out_the_boxes_that_run_none(api: Api, tmp_path: Path) -> None:
    settings = _settings(api, tmp_path)
    detector = {"name": "test-model", "version": "1"}
    with api.sessions.begin() as session:
        for device_id, runs in {
            "van-01": [detector, {"name": LOAD, "version": "1.0.0"}],
            "van-02": [detector],  # no truck_load section: it would refuse the update
            "van-03": [],  # never reported its models: it may run one
        }.items():
            seen = {"first_seen_at": NOW, "last_seen_at": NOW}
            session.add(Device(device_id=device_id, **seen, models=runs, fleet_group="north"))
    with api.sessions() as session, pytest.raises(ConfigError, match="van-02 run no model named truck-load"):
        stage(session, settings, "model", LOAD, "2.0.0", Selection(devices=("van-01", "van-02")), NOW)
    with api.sessions.begin() as session:
        rollout = stage(session, settings, "model", LOAD, "2.0.0", Selection(group="north"), NOW)
        assert sorted(t.device_id for t in rollout.targets) == ["van-01", "van-03"]
        assert rollout.selector == "group north (left out, running no truck-load: van-02)"


def test_a_drop_in_the_load_classifiers_live_precision_halts_its_rollout(api: Api, tmp_path: Path) -> None:
    settings = _settings(api, tmp_path)
    for index in range(4):
        decide(api, _truck_case(api, 300 * index, "1.0.0"), confirm=True)  # the old version: 4 of 4 right
    with api.sessions.begin() as session:
        for device_id in ("van-01", "van-02"):
            runs = [{"name": "test-model", "version": "1"}, {"name": LOAD, "version": "1.0.0"}]
            session.add(Device(device_id=device_id, first_seen_at=NOW, last_seen_at=NOW, models=runs))
        boxes = Selection(devices=("van-01", "van-02"))
        rollout = stage(session, settings, "model", LOAD, "2.0.0", boxes, NOW)
        assert {t.previous_version for t in rollout.targets} == {"1.0.0"}

    assert advance_rollout(api, settings, 1).state == "running"
    new = [_truck_case(api, 5000 + 300 * i, "2.0.0") for i in range(4)]
    decide(api, new[0], confirm=True)
    for case_id in new[1:]:
        decide(api, case_id, confirm=False)  # 1 of 4 right
    with api.sessions() as session:  # the detector's reviews are not the classifier's
        figures = precision_by_version(session, LOAD, None)
        assert {v: (p.counted, p.right) for v, p in figures.items()} == {"1.0.0": (4, 4), "2.0.0": (4, 1)}
    halted = advance_rollout(api, settings, 2)
    assert halted.state == "halted"
    assert halted.halted_reason == (
        "live precision of truck-load 2.0.0 is 0.25 over 4 reviewed cases, "
        "below 1.0.0's 1.00 (4 cases) by more than 0.10"
    )

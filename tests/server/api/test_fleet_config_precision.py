"""A configuration rollout halts like a model's when the new configuration's live precision drops: its
versions are judged on the cases whose opening event a box raised while running it (event schema 6,
``config``). Real cases, decided through the review API; SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from server.db.models import Device, Event
from server.fleet.precision import config_precision_by_version, precision_by_version
from server.fleet.rollouts import Selection, stage
from server.settings import FleetSettings, ServerSettings
from streetwatch.events import ConfigRef
from streetwatch.releases import generate_keypair, sign_config
from tests.server.api.conftest import NOW, Api, advance_rollout, decide, ingest, make_event

CONFIG = "patrol-van"


def _case(api: Api, east_m: float, config_version: str | None) -> int:
    """A garbage case opened by an event raised under ``config_version`` (None: the box's own file)."""
    event = make_event(east_m=east_m)
    config = None if config_version is None else ConfigRef(name=CONFIG, version=config_version)
    (outcome,) = ingest(api, event.model_copy(update={"config": config}))
    assert outcome.case_id is not None
    return outcome.case_id


def _settings(api: Api, tmp_path: Path) -> ServerSettings:
    """The server's settings with a signed configuration patrol-van 2 in its store."""
    private, public = generate_keypair(tmp_path / "keys")
    (tmp_path / "van.yaml").write_text("device_id: van-01\n")
    sign_config(tmp_path / "van.yaml", CONFIG, "2", private, tmp_path / "configs")
    registry = tmp_path / "models" / "registry.json"
    registry.parent.mkdir()
    registry.write_text(json.dumps({"format": 1, "current": {}, "models": []}))
    fleet = FleetSettings(
        model_registry=str(registry),
        public_key=str(public),
        config_store=str(tmp_path / "configs"),
        min_reviews=3,
        precision_margin=0.1,
    )
    return api.settings.model_copy(update={"fleet": fleet})


def test_events_keep_the_configuration_they_were_raised_under(api: Api) -> None:
    _case(api, 0, "1")
    _case(api, 300, None)
    with api.sessions() as session:
        stored = sorted((e.config_name or "", e.config_version or "") for e in session.query(Event))
    assert stored == [("", ""), (CONFIG, "1")]
    listed = api.get("/api/v1/events").json()["items"]
    assert sorted(json.dumps(e["config"]) for e in listed) == sorted(
        [json.dumps({"name": CONFIG, "version": "1"}), "null"]
    )


def test_a_drop_in_the_new_configurations_live_precision_halts_its_rollout(api: Api, tmp_path: Path) -> None:
    settings = _settings(api, tmp_path)
    for index in range(4):
        decide(api, _case(api, 300 * index, "1"), confirm=True)  # the old configuration: 4 of 4 right
    decide(api, _case(api, 2000, None), confirm=False)  # a box on its own file counts for neither
    with api.sessions.begin() as session:
        for device_id in ("van-01", "van-02"):
            seen = {"first_seen_at": NOW, "last_seen_at": NOW}
            session.add(Device(device_id=device_id, **seen, config_name=CONFIG, config_version="1"))
        rollout = stage(
            session, settings, "config", CONFIG, "2", Selection(devices=("van-01", "van-02")), NOW
        )
        assert {t.previous_version for t in rollout.targets} == {"1"}

    assert advance_rollout(api, settings, 1).state == "running"
    new = [_case(api, 5000 + 300 * i, "2") for i in range(4)]
    decide(api, new[0], confirm=True)
    for case_id in new[1:]:
        decide(api, case_id, confirm=False)  # 1 of 4 right
    with api.sessions() as session:
        figures = config_precision_by_version(session, CONFIG, None)
        assert {v: (p.counted, p.right) for v, p in figures.items()} == {"1": (4, 4), "2": (4, 1)}
        # The detector's own figure mixes both configurations: it cannot tell them apart.
        assert precision_by_version(session, "test-model", None)["1"].counted == 9
    halted = advance_rollout(api, settings, 2)
    assert halted.state == "halted"
    assert halted.halted_reason == (
        "live precision of patrol-van 2 is 0.25 over 4 reviewed cases, "
        "below 1's 1.00 (4 cases) by more than 0.10"
    )


def test_a_configuration_as_precise_as_the_old_one_rolls_on(api: Api, tmp_path: Path) -> None:
    settings = _settings(api, tmp_path)
    for index in range(4):
        decide(api, _case(api, 300 * index, "1"), confirm=index > 0)  # 3 of 4
    with api.sessions.begin() as session:
        for device_id in ("van-01", "van-02"):
            seen = {"first_seen_at": NOW, "last_seen_at": NOW}
            session.add(Device(device_id=device_id, **seen, config_name=CONFIG, config_version="1"))
        stage(session, settings, "config", CONFIG, "2", Selection(devices=("van-01", "van-02")), NOW)
    assert advance_rollout(api, settings, 1).state == "running"
    for index in range(4):
        decide(api, _case(api, 5000 + 300 * index, "2"), confirm=index > 0)  # 3 of 4 as well
    assert advance_rollout(api, settings, 2).state == "running"


def test_a_permitted_object_counts_as_right_for_the_model_and_the_configuration(api: Api) -> None:
    """A sign marked permitted is still a sign: a model rolled out down a street of registered signs
    must not look worse for the permits."""
    cases = [_case(api, 300 * index, "3") for index in range(4)]
    decide(api, cases[0], confirm=True)
    for case_id in cases[1:3]:
        answer = api.post(
            f"/api/v1/cases/{case_id}/actions",
            role="reviewer",
            json={"action": "reject", "reject_reason": "permitted"},
        )
        assert answer.status_code == 200, answer.text
    decide(api, cases[3], confirm=False)  # not a violation: wrong
    with api.sessions() as session:
        by_config = config_precision_by_version(session, CONFIG, None)["3"]
        by_model = precision_by_version(session, "test-model", None)["1"]
    assert (by_config.counted, by_config.right) == (4, 3)
    assert (by_model.counted, by_model.right) == (4, 3)

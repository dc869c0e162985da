"""A rollout halts when the new model's live precision from reviews drops below the old one's
(the review stats' query over real cases, decided through the review API). SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from server.db.models import Device
from server.fleet.rollouts import Selection, stage
from server.settings import FleetSettings
from tests.fleet.releases_support import MODEL, signed_registry
from tests.server.api.conftest import NOW, Api, advance_rollout, decide, ingest, make_event


def _case(api: Api, east_m: float, version: str) -> int:
    event = make_event(east_m=east_m, observed_at=NOW)
    event = event.model_copy(
        update={"model": event.model.model_copy(update={"name": MODEL, "version": version})}
    )
    (outcome,) = ingest(api, event, now=NOW)
    assert outcome.case_id is not None
    return outcome.case_id


def test_a_drop_in_live_precision_halts_the_rollout(api: Api, tmp_path: Path) -> None:
    registry, public, _ = signed_registry(tmp_path)
    fleet = FleetSettings(
        model_registry=str(registry), public_key=str(public), min_reviews=3, precision_margin=0.1
    )
    settings = api.settings.model_copy(update={"fleet": fleet})
    for index, version in enumerate(["1.0.0"] * 4):
        decide(api, _case(api, 300 * index, version), confirm=True)  # the old model: 4 of 4 right
    with api.sessions.begin() as session:
        for device_id in ("van-01", "van-02"):
            models = [{"name": MODEL, "version": "1.0.0"}]
            session.add(Device(device_id=device_id, first_seen_at=NOW, last_seen_at=NOW, models=models))
        stage(session, settings, "model", MODEL, "2.0.0", Selection(devices=("van-01", "van-02")), NOW)

    assert advance_rollout(api, settings, 1).state == "running"  # the canary gets it
    new = [_case(api, 5000 + 300 * i, "2.0.0") for i in range(4)]
    decide(api, new[0], confirm=True)
    decide(api, new[1], confirm=False)
    assert advance_rollout(api, settings, 2).state == "running"  # two reviews: too few to judge

    decide(api, new[2], confirm=False)
    decide(api, new[3], confirm=False)  # 1 of 4 right now
    halted = advance_rollout(api, settings, 3)
    assert halted.state == "halted"
    assert halted.halted_reason == (
        "live precision of streetwatch-det 2.0.0 is 0.25 over 4 reviewed cases, "
        "below 1.0.0's 1.00 (4 cases) by more than 0.10"
    )

"""``/api/v1/fleet``: downloads for the box a command names (Range resume), rollouts, groups, the view.

Served by real uvicorn on SQLite and PostgreSQL: a resumed download is what a box on a
patrol van's modem does after a dead zone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server.app import create_app
from server.auth import Role, create_user
from server.db.models import Device
from server.fleet.rollouts import Selection, advance, stage
from server.settings import FleetSettings, ServerSettings
from streetwatch.messages import UpdateConfigCommand
from streetwatch.releases import sign_config
from tests.fleet.releases_support import MODEL, signed_registry
from tests.server.api.conftest import NOW
from tests.server.api.live_server import serve


@dataclass
class FleetApi:
    http: httpx.Client
    settings: ServerSettings
    tokens: dict[str, str]
    model: bytes

    def as_(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def fleet_api(migrated_url: str, tmp_path: Path) -> Iterator[FleetApi]:
    registry, public, signed = signed_registry(tmp_path)
    settings = ServerSettings(
        database_url=migrated_url,
        evidence_dir=str(tmp_path / "evidence"),
        fleet=FleetSettings(
            model_registry=str(registry), public_key=str(public), config_store=str(tmp_path / "fleet")
        ),
    )
    app = create_app(settings)
    with app.state.sessions() as session:
        tokens = {
            name: create_user(session, name, role, NOW).token
            for name, role in (("van-01", Role.device), ("van-02", Role.device), ("ops", Role.admin),
                               ("watcher", Role.viewer))
        }  # fmt: skip
        for device_id, group in (("van-01", "north"), ("van-02", "north"), ("pole-1", None)):
            session.add(
                Device(
                    device_id=device_id,
                    first_seen_at=NOW,
                    last_seen_at=NOW,
                    status="online",
                    models=[{"name": MODEL, "version": "1.0.0"}],
                    event_count=0,
                    fleet_group=group,
                )
            )
        session.commit()
    with serve(app) as port, httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as http:
        yield FleetApi(http, settings, tokens, signed.path.read_bytes())


def _command_ids(api: FleetApi, url: str) -> dict[str, str]:
    """Stage a rollout to van-01 (canary) then van-02, and send the first wave: device -> command id."""
    from server.db.session import make_engine, session_factory

    engine = make_engine(url)
    try:
        with session_factory(engine).begin() as session:
            rollout = stage(session, api.settings, "model", MODEL, "2.0.0", Selection(group="north"), NOW)
            advance(session, api.settings, NOW)
            return {t.device_id: t.command_id for t in rollout.targets}
    finally:
        engine.dispose()


def test_a_box_downloads_its_file_and_resumes_it_after_a_cut_and_no_one_else_may(
    fleet_api: FleetApi, migrated_url: str
) -> None:
    ids = _command_ids(fleet_api, migrated_url)
    url = f"/fleet/downloads/{ids['van-01']}"
    size = len(fleet_api.model)
    received = b""
    with fleet_api.http.stream("GET", url, headers=fleet_api.as_("van-01")) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == size
        assert response.headers["x-content-sha256"] == hashlib.sha256(fleet_api.model).hexdigest()
        for chunk in response.iter_bytes(16384):
            received += chunk
            if len(received) >= size // 2:
                break  # the link drops halfway
    assert 0 < len(received) < size
    rest = fleet_api.http.get(url, headers={**fleet_api.as_("van-01"), "Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert rest.headers["content-range"] == f"bytes {len(received)}-{size - 1}/{size}"
    assert received + rest.content == fleet_api.model

    # Another box's token, a dispatcher's token, no token, a command not yet sent: refused.
    assert fleet_api.http.get(url, headers=fleet_api.as_("van-02")).status_code == 404
    assert fleet_api.http.get(url, headers=fleet_api.as_("ops")).status_code == 403
    assert fleet_api.http.get(url).status_code == 401
    waiting = fleet_api.http.get(f"/fleet/downloads/{ids['van-02']}", headers=fleet_api.as_("van-02"))
    assert waiting.status_code == 409 and "pending" in waiting.json()["detail"]


def test_admins_stage_rollouts_and_set_groups_viewers_see_the_fleet(
    fleet_api: FleetApi, tmp_path: Path
) -> None:
    http, ops = fleet_api.http, fleet_api.as_("ops")
    unsigned = http.post(
        "/fleet/rollouts", headers=ops, json={"name": MODEL, "version": "9.0.0", "percent": 50}
    )
    assert unsigned.status_code == 409 and "is not signed" in unsigned.json()["detail"]
    two_choices = {"name": MODEL, "version": "2.0.0", "devices": ["x"], "group": "north"}
    both = http.post("/fleet/rollouts", headers=ops, json=two_choices)
    assert both.status_code == 422
    assert http.post("/fleet/rollouts", headers=fleet_api.as_("watcher"), json={}).status_code == 403

    assert http.put("/fleet/devices/pole-1/group", headers=ops, json={"group": "poles"}).status_code == 200
    made = http.post(
        "/fleet/rollouts", headers=ops, json={"name": MODEL, "version": "2.0.0", "group": "poles"}
    )
    assert made.status_code == 201, made.text
    assert made.json()["targets"] == {"pending": 1} and made.json()["selector"] == "group poles"
    again = http.post(
        "/fleet/rollouts", headers=ops, json={"name": MODEL, "version": "2.0.0", "group": "north"}
    )
    assert again.status_code == 409 and "still running" in again.json()["detail"]

    view = http.get("/fleet", headers=fleet_api.as_("watcher")).json()
    boxes = {b["device_id"]: b for b in view["boxes"]}
    assert boxes["pole-1"]["group"] == "poles"
    assert boxes["pole-1"]["models"] == {MODEL: "1.0.0"}
    assert boxes["pole-1"]["rollout"]["state"] == "pending"
    assert boxes["van-01"]["rollout"] is None
    # A box takes one update at a time: a config rollout to pole-1 waits for its model rollout.
    (tmp_path / "pole.yaml").write_text("device_id: pole-1\n")
    sign_config(
        tmp_path / "pole.yaml", "pole", "1", tmp_path / "keys" / "fleet-release.key", tmp_path / "fleet"
    )
    config = {"kind": "config", "name": "pole", "version": "1", "devices": ["pole-1"]}
    busy = http.post("/fleet/rollouts", headers=ops, json=config)
    assert busy.status_code == 409 and "pole-1 (rollout 1)" in busy.json()["detail"], busy.text
    halted = http.post(f"/fleet/rollouts/{made.json()['id']}/halt", headers=ops)
    assert halted.json()["state"] == "halted" and halted.json()["targets"] == {"cancelled": 1}
    only_north = http.get("/fleet", params={"group": "north"}, headers=fleet_api.as_("watcher")).json()
    assert sorted(b["device_id"] for b in only_north["boxes"]) == ["van-01", "van-02"]


def test_a_signed_config_rolls_out_like_a_model_and_only_its_box_fetches_it(
    fleet_api: FleetApi, migrated_url: str, tmp_path: Path
) -> None:
    from server.db.session import make_engine, session_factory

    yaml_text = b"device_id: van-01\nsource: {kind: images, path: /data}\n"
    (tmp_path / "van.yaml").write_bytes(yaml_text)
    sign_config(
        tmp_path / "van.yaml", "patrol-van", "7", tmp_path / "keys" / "fleet-release.key", tmp_path / "fleet"
    )
    body = {"kind": "config", "name": "patrol-van", "version": "7", "devices": ["van-01"]}
    made = fleet_api.http.post("/fleet/rollouts", headers=fleet_api.as_("ops"), json=body)
    assert made.status_code == 201, made.text
    engine = make_engine(migrated_url)
    try:
        with session_factory(engine).begin() as session:
            ((device_id, payload),) = advance(session, fleet_api.settings, NOW)
    finally:
        engine.dispose()
    command = UpdateConfigCommand.model_validate_json(payload)
    assert device_id == "van-01" and (command.name, command.version, command.size) == (
        "patrol-van",
        "7",
        len(yaml_text),
    )
    path = command.url.split("/api/v1", 1)[1]
    assert fleet_api.http.get(path, headers=fleet_api.as_("van-01")).content == yaml_text
    assert fleet_api.http.get(path, headers=fleet_api.as_("van-02")).status_code == 404


def test_the_boxs_own_downloader_resumes_a_half_file_from_this_server(
    fleet_api: FleetApi, migrated_url: str, tmp_path: Path
) -> None:
    from edge.updates.download import DownloadError, download

    ids = _command_ids(fleet_api, migrated_url)
    base = str(fleet_api.http.base_url).rstrip("/")
    part = tmp_path / "staging" / "det.onnx.part"
    part.parent.mkdir()
    half = len(fleet_api.model) // 2
    part.write_bytes(fleet_api.model[:half])  # what a cut left behind
    got = download(
        f"{base}/fleet/downloads/{ids['van-01']}",
        part,
        size=len(fleet_api.model),
        token=fleet_api.tokens["van-01"],
        timeout_s=10,
        attempts=2,
    )
    assert got.read_bytes() == fleet_api.model
    with pytest.raises(DownloadError, match="404"):
        download(
            f"{base}/fleet/downloads/{ids['van-01']}",
            tmp_path / "other.part",
            size=len(fleet_api.model),
            token=fleet_api.tokens["van-02"],
            timeout_s=10,
            attempts=2,
        )

"""Teams (``/api/v1/teams``, ``streetwatch team``): admins keep the list, dispatch takes only its active
teams once one is defined, and a deactivated team stays on the cases it holds. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from server.db.models import Case, Team
from streetwatch.cli import main
from tests.server.api.conftest import Api, ingest, make_event


def _case(api: Api, metres: float) -> int:
    (outcome,) = ingest(api, make_event(north_m=metres))
    assert outcome.case_id is not None
    return outcome.case_id


def _dispatch(api: Api, case_id: int, team: str) -> tuple[int, str]:
    response = api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "dispatch", "team": team})
    return response.status_code, response.text


def _add(api: Api, name: str, description: str = "") -> dict:
    response = api.post("/api/v1/teams", role="admin", json={"name": name, "description": description})
    assert response.status_code == 201, response.text
    return response.json()


def test_dispatch_is_free_text_until_a_team_is_defined_then_active_teams_only(api: Api) -> None:
    first, second = _case(api, 0), _case(api, 500)
    listed = api.get("/api/v1/teams").json()
    assert listed["items"] == [] and listed["free_text_dispatch"] is True
    assert _dispatch(api, first, "whoever is free")[0] == 200  # no register yet: as before teams existed

    north = _add(api, "  North crew ", "Wards 1-4")
    assert north["name"] == "North crew" and north["active"] is True  # trimmed like a dispatch's team
    assert north["created_by"] == north["updated_by"] == "admin-1"
    _add(api, "East grid")
    listed = api.get("/api/v1/teams", role="reviewer").json()
    assert [t["name"] for t in listed["items"]] == ["East grid", "North crew"]
    assert listed["free_text_dispatch"] is False

    status, text = _dispatch(api, second, "whoever is free")
    assert status == 422
    assert "'whoever is free' is not a known team" in text and "'East grid', 'North crew'" in text
    bulk = api.post(
        "/api/v1/cases/bulk-actions", json={"action": "dispatch", "team": "nobody", "case_ids": [second]}
    )
    assert bulk.status_code == 422 and "'North crew'" in bulk.text
    assert _dispatch(api, second, " North crew ")[0] == 200
    with api.sessions() as session:
        teams = dict(session.execute(select(Case.id, Case.assigned_team)).all())
    # The case dispatched before the register existed keeps its free-text team.
    assert teams == {first: "whoever is free", second: "North crew"}


def test_admin_renames_and_deactivates_a_team_that_stays_on_its_cases(api: Api) -> None:
    case_id = _case(api, 0)
    team = _add(api, "West")
    assert _dispatch(api, case_id, "West")[0] == 200

    assert api.post("/api/v1/teams", role="admin", json={"name": "west"}).status_code == 409  # case-blind
    assert api.post("/api/v1/teams", role="admin", json={"name": "   "}).status_code == 422
    assert api.post("/api/v1/teams", role="admin", json={"name": "x" * 65}).status_code == 422
    assert api.post("/api/v1/teams", role="reviewer", json={"name": "Mine"}).status_code == 403

    patch = api.client.patch
    admin = api.headers("admin")
    renamed = patch(f"/api/v1/teams/{team['id']}", headers=admin, json={"name": "West depot"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "West depot"
    _add(api, "South")
    clash = patch(f"/api/v1/teams/{team['id']}", headers=admin, json={"name": "SOUTH"})
    assert clash.status_code == 409 and "'South'" in clash.json()["detail"]
    assert patch("/api/v1/teams/999999", headers=admin, json={"active": False}).status_code == 404
    refused = patch(f"/api/v1/teams/{team['id']}", headers=api.headers("reviewer"), json={"active": False})
    assert refused.status_code == 403

    off = patch(f"/api/v1/teams/{team['id']}", headers=admin, json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    assert [t["name"] for t in api.get("/api/v1/teams").json()["items"]] == ["South"]
    assert api.get("/api/v1/teams?include_inactive=true").status_code == 403  # viewer: active only
    everything = api.get("/api/v1/teams?include_inactive=true", role="admin").json()["items"]
    assert {t["name"]: t["active"] for t in everything} == {"South": True, "West depot": False}

    status, text = _dispatch(api, case_id, "West depot")
    assert status == 422 and "'West depot' is inactive" in text and "'South'" in text
    with api.sessions() as session:
        case = session.get(Case, case_id)
        assert case is not None and case.assigned_team == "West"  # the name it was dispatched under
    # A reactivated team is offered again.
    assert patch(f"/api/v1/teams/{team['id']}", headers=admin, json={"active": True}).status_code == 200
    assert _dispatch(api, case_id, "West depot")[0] == 200


def test_team_cli_adds_lists_and_disables(
    migrated_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], api: Api
) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"database_url": migrated_url, "evidence_dir": str(tmp_path / "ev")}))
    run = ["--config", str(config)]
    assert main(["team", "list", *run]) == 0
    assert "no teams defined" in capsys.readouterr().out
    assert main(["team", "add", " Night patrol ", "--description", "22:00-06:00", *run]) == 0
    assert main(["team", "add", "night PATROL", *run]) == 1
    assert "exists already" in capsys.readouterr().err
    assert main(["team", "add", "Day shift", *run]) == 0
    assert main(["team", "disable", "night patrol", *run]) == 0  # found ignoring case
    assert main(["team", "disable", "Nobody", *run]) == 1
    assert "known teams: 'Day shift', 'Night patrol'" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["team", "list", *run]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed == ["Day shift\tactive", "Night patrol\tdisabled\t22:00-06:00"]
    # The API sees what the command did.
    assert [t["name"] for t in api.get("/api/v1/teams").json()["items"]] == ["Day shift"]
    assert main(["team", "rename", "Day shift", "Early shift", *run]) == 0
    assert main(["team", "rename", "Early shift", "NIGHT patrol", *run]) == 1
    assert "'Night patrol' exists already" in capsys.readouterr().err
    assert main(["team", "enable", "Night patrol", *run]) == 0
    listed = [t["name"] for t in api.get("/api/v1/teams").json()["items"]]
    assert listed == ["Early shift", "Night patrol"]
    with api.sessions() as session:
        night = session.scalar(select(Team).where(Team.name == "Night patrol"))
        assert night is not None and night.updated_by.startswith("cli")

"""Permits that arrive after their signs' cases opened, SQLite and PostgreSQL: the import names the
open cases standing where a permit now is, and each such case shows the entry, nearest first,
until a reviewer rejects it as permitted. Nothing is decided for the dispatcher."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from server.db.models import Sign
from server.signs.since import reach_of
from tests.server.api.conftest import NOW, Api, ingest, make_event
from tests.server.api.conftest import offset_position as offset


def _sign_case(api: Api, north_m: float) -> int:
    event = make_event(
        violation_type="illegal_signboard", detector_class="signboard", north_m=north_m, observed_at=NOW
    )
    (outcome,) = ingest(api, event, now=NOW)
    assert outcome.case_id is not None
    return outcome.case_id


def _permits(*rows: tuple[str, float, float]) -> str:
    return "Permit_ID,latitude,longitude,valid_until\n" + "".join(
        f"{p},{lat:.7f},{lon:.7f},2031-03-31\n" for p, lat, lon in rows
    )


def test_an_import_names_the_open_cases_its_permits_stand_at_and_each_case_shows_the_entry(api: Api) -> None:
    here, far = _sign_case(api, 0.0), _sign_case(api, 500.0)
    lat, lon = offset(2.0, 0.0)  # the permit office's position: 2 m from where the van placed it
    text = _permits(("P-1", lat, lon))
    checked = api.post("/api/v1/signs/import", json={"format": "csv", "text": text, "dry_run": True}).json()
    assert checked["open_cases"] == [here]  # said before anything changes
    done = api.post("/api/v1/signs/import", json={"format": "csv", "text": text}).json()
    assert (done["added"], done["open_cases"]) == (1, [here])

    register = api.get(f"/api/v1/cases/{here}").json()["sign_register"]
    assert register["outcome"] == "new"  # what the register said when the case opened stays
    (entry,) = register["registered_since"]
    assert (entry["permit_id"], entry["source"]) == ("P-1", "import")
    assert abs(entry["distance_m"] - 2.0) < 0.2
    assert api.get(f"/api/v1/cases/{far}").json()["sign_register"]["registered_since"] == []

    # Rejected as permitted, the case's sign takes the permit over: one entry in force, with the
    # case's look and the permit's number and last day (it lapses when the permit does).
    body = {"action": "reject", "reject_reason": "permitted"}
    assert api.post(f"/api/v1/cases/{here}/actions", json=body).status_code == 200
    with api.sessions() as session:
        in_force = session.scalars(select(Sign).where(Sign.superseded_by.is_(None))).all()
        (sign,) = in_force
        assert (sign.source, sign.case_id, sign.permit_id) == ("review", here, "P-1")
        assert sign.valid_until is not None and sign.valid_until.date().isoformat() == "2031-03-31"
        imported = session.scalars(select(Sign).where(Sign.source == "import")).one()
        assert imported.superseded_by == sign.id
    # ...and the case is no longer open: importing the list again names nothing.
    again = api.post("/api/v1/signs/import", json={"format": "csv", "text": text}).json()
    assert (again["updated"], again["open_cases"]) == (1, [])
    # Taken back, the case's entry goes and the imported permit is in force again.
    assert api.post(f"/api/v1/cases/{here}/actions", json={"action": "reopen"}).status_code == 200
    with api.sessions() as session:
        (back,) = session.scalars(select(Sign).where(Sign.superseded_by.is_(None))).all()
        assert (back.source, back.permit_id) == ("import", "P-1")


def test_an_entry_older_than_the_case_or_beyond_the_reach_is_not_offered(api: Api) -> None:
    signs = api.settings.signs
    reach = reach_of(signs.max_distance_m, signs.max_accuracy_m)
    case_id = _sign_case(api, 0.0)
    # Beyond the reach: neither the import nor the case names it.
    beyond = offset(reach + 1.0, 0.0)
    report = api.post("/api/v1/signs/import", json={"format": "csv", "text": _permits(("FAR", *beyond))})
    assert report.json()["open_cases"] == []
    # Within the reach but made before the case opened: the register weighed it when the case
    # opened (and named it, if it was the sign), so it is not offered as news.
    near = offset(1.0, 0.0)
    made = api.post("/api/v1/signs", json={"lat": near[0], "lon": near[1], "permit_id": "OLD"})
    assert made.status_code == 201, made.text
    with api.sessions() as session:
        entry = session.get(Sign, made.json()["id"])
        assert entry is not None
        entry.created_at = NOW - timedelta(days=1)
        session.commit()
    assert api.get(f"/api/v1/cases/{case_id}").json()["sign_register"]["registered_since"] == []
    # Moved to now, the same entry is news.
    with api.sessions() as session:
        entry = session.get(Sign, made.json()["id"])
        assert entry is not None
        entry.created_at = NOW + timedelta(minutes=5)
        session.commit()
    (offered,) = api.get(f"/api/v1/cases/{case_id}").json()["sign_register"]["registered_since"]
    assert (offered["permit_id"], offered["source"]) == ("OLD", "api")

"""A permit list sent to ``POST /api/v1/signs/import`` (the console's Signs page), SQLite and PostgreSQL:
a dry run counts and changes nothing, wrong rows are listed and skipped, the same list again
updates its entries, a named photo (which a list sent over HTTP cannot bring) is left out with a
note, and a list that cannot be read at all is a 422 that says why."""

from __future__ import annotations

import json

from sqlalchemy import select

from server.db.models import Sign
from tests.server.api.conftest import Api

PERMITS = (
    "Permit_ID,latitude,longitude,valid_until,description,photo\n"
    'SB-1,21.02851,105.85420,2027-06-30,"Pho 24, Hang Bai 12",sb-1.jpg\n'
    "SB-2,21.02900,105.85500,,,\n"
    "SB-3,not-a-number,105.8,,,\n"
)


def permits(api: Api) -> dict[str, Sign]:
    with api.sessions() as session:
        return {s.permit_id or "": s for s in session.scalars(select(Sign))}


def test_a_dry_run_counts_then_the_import_registers_and_a_second_one_updates(api: Api) -> None:
    checked = api.post("/api/v1/signs/import", json={"format": "csv", "text": PERMITS, "dry_run": True})
    assert checked.status_code == 200, checked.text
    report = checked.json()
    assert (report["added"], report["updated"], report["dry_run"]) == (2, 0, True)
    assert report["errors"] == ["row 4: position 'not-a-number', '105.8' is not two numbers"]
    assert report["notes"] == [
        "row 2: photo 'sb-1.jpg' not read (a list sent over the API brings no files); the first sighting "
        "at the place gives the sign its look"
    ]
    assert permits(api) == {}  # a dry run changes nothing

    done = api.post("/api/v1/signs/import", json={"format": "csv", "text": PERMITS}).json()
    assert (done["added"], done["updated"], done["dry_run"]) == (2, 0, False)
    signs = permits(api)
    assert set(signs) == {"SB-1", "SB-2"}
    first = signs["SB-1"]
    assert (first.source, first.created_by) == ("import", "reviewer-1")
    assert first.description == "Pho 24, Hang Bai 12"
    assert first.valid_until is not None and first.valid_until.date().isoformat() == "2027-06-30"
    assert first.fingerprint is None  # no photo: the first sighting gives its look

    moved = PERMITS.replace("21.02900,105.85500", "21.02910,105.85510")
    again = api.post("/api/v1/signs/import", json={"format": "csv", "text": moved}).json()
    assert (again["added"], again["updated"]) == (0, 2)
    assert len(permits(api)) == 2 and round(permits(api)["SB-2"].lat, 5) == 21.0291


def test_a_geojson_list_is_read_and_an_unreadable_list_is_refused_with_the_reason(api: Api) -> None:
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [105.8542, 21.0285]},
         "properties": {"permit_id": "GJ-1", "valid_until": "2027-01-01"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[105.85, 21.02], [105.9, 21]]},
         "properties": {"permit_id": "GJ-2"}},
    ]  # fmt: skip
    text = json.dumps({"type": "FeatureCollection", "features": features})
    report = api.post("/api/v1/signs/import", json={"format": "geojson", "text": text}).json()
    assert (report["added"], report["errors"]) == (1, ["feature 2: its geometry is not a Point"])
    assert set(permits(api)) == {"GJ-1"}

    no_header = api.post("/api/v1/signs/import", json={"format": "csv", "text": "SB-9;21.0;105.8\n"})
    assert no_header.status_code == 422
    assert "the permit list: the header lacks lat, lon, permit_id" in no_header.json()["detail"]
    not_json = api.post("/api/v1/signs/import", json={"format": "geojson", "text": "permit_id,lat,lon"})
    assert not_json.status_code == 422 and "is not valid JSON" in not_json.json()["detail"]
    refused = api.post("/api/v1/signs/import", json={"format": "xlsx", "text": "x"})
    assert refused.status_code == 422
    assert set(permits(api)) == {"GJ-1"}

"""A permitted case replaces the register entry it was opened about (SQLite and PostgreSQL).

A sign whose permit ran out opens an "expired" case; the dispatcher learns the permit was renewed
and marks the case permitted. A shop that put up a new sign opens a "changed" case; the permit
office allows the new one. Either way the entry the case named is what the register knew of that
place, and the new entry takes its place: the next pass attaches to the new entry and opens
nothing, instead of the stale entry opening the same case again. Reopening the case puts the old
entry back.
"""

from __future__ import annotations

import random
from datetime import timedelta

import httpx
from sqlalchemy import select

from server.db.models import Case, Sign, SignSighting
from server.matching.geohash import encode
from server.settings import CELL_PRECISION
from tests.server.api.conftest import NOW, Api, store_evidence
from tests.server.api.conftest import offset_position as offset
from tests.server.api.test_sign_register import _jpeg, drive, fixture_crops

LAT, LON = 21.0285, 105.8542  # where drive() puts the first sign


def register_by_hand(api: Api, crop: bytes, **fields: object) -> int:
    sha = store_evidence(api, crop)
    reply = api.post("/api/v1/signs", json={"lat": LAT, "lon": LON, "crop_sha256": sha, **fields})
    assert reply.status_code == 201, reply.text
    return int(reply.json()["id"])


def new_cases(api: Api, known: set[int]) -> list[Case]:
    with api.sessions() as session:
        cases = session.scalars(select(Case).order_by(Case.id)).all()
        session.expunge_all()
    return [c for c in cases if c.id not in known]


def permit(api: Api, case_id: int) -> None:
    body = {"action": "reject", "reject_reason": "permitted"}
    reply = api.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert reply.status_code == 200, reply.text


def test_a_renewed_permit_stops_the_expired_cases(api: Api) -> None:
    sign = fixture_crops()[3]
    lapsed = (NOW - timedelta(days=1)).isoformat()
    old = register_by_hand(api, _jpeg(sign), permit_id="SB-7", valid_until=lapsed)
    rng = random.Random(11)
    drive(api, [sign], rng, at_day=0)
    (expired,) = new_cases(api, set())
    assert expired.title.startswith("Signboard permit expired") and f"register entry {old}" in expired.title

    permit(api, expired.id)  # the permit was renewed
    with api.sessions() as session:
        renewed = session.scalars(select(Sign).where(Sign.case_id == expired.id)).one()
        stale = session.get(Sign, old)
        assert stale is not None and stale.superseded_by == renewed.id
        assert f"replaces register entry {old} (permit SB-7" in renewed.description
        renewed_id = renewed.id
    for day in (1, 2, 3):  # pass after pass: the same sign, seen a little differently each time
        drive(api, [sign], rng, at_day=day)
    assert new_cases(api, {expired.id}) == []
    shown = api.get(f"/api/v1/signs/{old}").json()
    assert shown["superseded_by"] == renewed_id
    assert api.get(f"/api/v1/signs/{renewed_id}").json()["sighting_count"] == 6

    # The renewal is taken back: the case is open again, and so is the lapsed entry.
    reply = api.post(f"/api/v1/cases/{expired.id}/actions", json={"action": "reopen"})
    assert reply.status_code == 200, reply.text
    assert api.get(f"/api/v1/signs/{old}").json()["superseded_by"] is None
    assert api.get(f"/api/v1/signs/{renewed_id}").status_code == 404
    (last,) = drive(api, [sign], rng, at_day=4)[-1:]
    with api.sessions() as session:
        sighting = session.scalars(select(SignSighting).where(SignSighting.event_id == last)).one()
        assert (sighting.outcome, sighting.sign_id) == ("expired", old)


def test_a_new_sign_allowed_in_place_of_the_old_one_replaces_its_entry(api: Api) -> None:
    crops = fixture_crops()
    before, after = crops[3], crops[6]
    old = register_by_hand(api, _jpeg(before))
    rng = random.Random(12)
    drive(api, [after], rng, at_day=0)  # the shop put up another sign
    (changed,) = new_cases(api, set())
    assert changed.title.startswith("Changed signboard")
    permit(api, changed.id)  # the permit office allows the new sign
    drive(api, [after], rng, at_day=1)
    assert new_cases(api, {changed.id}) == []
    listed = {s["id"]: s for s in api.get("/api/v1/signs").json()["items"]}
    assert listed[old]["superseded_by"] is not None and listed[old]["superseded_by"] in listed


def edit(api: Api, entry: int, body: dict[str, object], role: str = "reviewer") -> httpx.Response:
    return api.client.patch(f"/api/v1/signs/{entry}", json=body, headers=api.headers(role))


def test_a_permit_renewed_on_its_entry_lets_the_sign_through_again(api: Api) -> None:
    """The other way a supervisor renews a permit: edit the entry (the Signs page's Edit)."""
    sign = fixture_crops()[3]
    lapsed = (NOW - timedelta(days=1)).isoformat()
    entry = register_by_hand(api, _jpeg(sign), permit_id="SB-8", valid_until=lapsed)
    next_year = (NOW + timedelta(days=365)).isoformat()
    renewed = edit(api, entry, {"valid_until": next_year, "description": "2026"})
    assert renewed.status_code == 200, renewed.text
    assert (renewed.json()["permit_id"], renewed.json()["description"]) == ("SB-8", "2026")  # kept / changed
    drive(api, [sign], random.Random(13), at_day=0)
    assert new_cases(api, set()) == []
    assert api.get(f"/api/v1/signs/{entry}").json()["sighting_count"] == 2

    cleared = edit(api, entry, {"permit_id": None}).json()
    assert cleared["permit_id"] is None and cleared["valid_until"] is not None
    half = edit(api, entry, {"lat": 21.03})
    assert half.status_code == 422 and half.json()["detail"] == "give lat and lon together"
    moved = edit(api, entry, {"lat": 21.03, "lon": 105.86}).json()
    assert (moved["lat"], moved["lon"]) == (21.03, 105.86)
    with api.sessions() as session:
        assert session.get(Sign, entry).cell == encode(21.03, 105.86, CELL_PRECISION)  # the cell follows
    assert edit(api, entry, {"permit_id": "X"}, role="viewer").status_code == 403
    assert edit(api, 10**6, {"permit_id": "X"}).status_code == 404


def test_the_register_stats_count_the_signs_that_opened_no_case(api: Api) -> None:
    """``GET /stats/signs``: what a supervisor reads to see what the register saves the dispatchers."""
    crops = fixture_crops()
    for index, crop in enumerate(crops[3:5]):  # two permitted signs, the second one's permit lapsed
        sha = store_evidence(api, _jpeg(crop))
        lat, lon = offset(0, 20 * index)  # where drive() passes them
        lapsed = (NOW - timedelta(days=1)).isoformat() if index == 1 else None
        body = {"lat": lat, "lon": lon, "crop_sha256": sha, "valid_until": lapsed}
        assert api.post("/api/v1/signs", json=body).status_code == 201
    drive(api, crops[3:6], random.Random(14), at_day=0)  # the two, and a third sign nobody registered
    stats = api.get("/api/v1/stats/signs").json()
    rows = {r["outcome"]: r for r in stats["rows"]}
    assert rows["attached"] == {"outcome": "attached", "sightings": 2, "signs": 1, "cases": 0}
    assert (rows["expired"]["signs"], rows["expired"]["cases"]) == (1, 1)
    assert (rows["new"]["signs"], rows["new"]["cases"]) == (1, 1)
    assert (stats["signs_without_case"], stats["signs_with_case"]) == (1, 2)
    assert (stats["entries_in_force"], stats["permits_lapsed"], stats["entries_replaced"]) == (2, 1, 0)
    later = (NOW + timedelta(days=1)).isoformat()
    assert api.get("/api/v1/stats/signs", params={"since": later}).json()["rows"] == []
    sheet = api.get("/api/v1/stats/signs", params={"format": "csv"}).text.splitlines()
    assert sheet[0] == "outcome,sightings,signs,cases" and "attached,2,1,0" in sheet

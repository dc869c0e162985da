"""No-sign zones through the ingest and the API, on SQLite and PostgreSQL, with real sign crops.

A heritage street's east side is a no-sign zone. A patrol van drives north up the street; its box
places each sign it passes. A sign on the east side opens a "signboard in a no-sign zone" case; the
same kind of sign across the street opens a plain "new signboard" case. Once the permit office has
permitted the east-side sign (the dispatcher marks its case permitted), the next pass attaches to it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from server.db.models import Case, SignSighting
from server.settings import SignSettings
from tests.server.api.conftest import NOW, Api, ingest, make_event, offset_position, store_evidence
from tests.server.api.test_sign_register import _jpeg, fixture_crops
from tests.server.signs.zone_files import write_zones, zone_feature


def zone_file(tmp_path: Path) -> Path:
    corners = [offset_position(n, e) for n, e in ((0, 3), (0, 12), (300, 12), (300, 3), (0, 3))]
    return write_zones(tmp_path, zone_feature("Hang Dao east side", "heritage street: no signs", corners))


def sighting(
    api: Api,
    crop: bytes,
    north_m: float,
    east_m: float,
    day: int,
    track_id: uuid.UUID | None = None,
    later_s: float = 0.0,
) -> uuid.UUID:
    """A sign the van's box placed ``east_m`` east of its route, confirmed 20 m before it."""
    store_evidence(api, crop, device_id="van-1")
    lat, lon = offset_position(north_m, east_m)
    event = make_event(
        violation_type="illegal_signboard",
        detector_class="signboard",
        device_id="van-1",
        observed_at=NOW + timedelta(days=day, seconds=north_m + later_s),
        north_m=north_m - 20,
        evidence=(crop, crop),
        track_id=track_id,
        object_position={"lat": lat, "lon": lon, "accuracy_m": 3.0, "along_m": 20.0},
    )
    ingest(api, event, now=event.observed_at + timedelta(seconds=1))
    return event.event_id


def outcome_and_title(api: Api, event_id: uuid.UUID) -> tuple[str, str | None]:
    with api.sessions() as session:
        sighting = session.scalars(select(SignSighting).where(SignSighting.event_id == event_id)).one()
        case = session.get(Case, sighting.case_id) if sighting.case_id is not None else None
        return str(sighting.outcome), case.title if case is not None else None


def test_a_sign_in_a_no_sign_zone_is_a_case_that_says_so_until_it_is_permitted(
    api: Api, tmp_path: Path
) -> None:
    api.settings = api.settings.model_copy(
        update={"signs": SignSettings(no_sign_zones=str(zone_file(tmp_path)))}
    )
    east_sign, west_sign = (_jpeg(crop) for crop in fixture_crops()[:2])

    east = sighting(api, east_sign, north_m=100, east_m=7, day=0)
    west = sighting(api, west_sign, north_m=160, east_m=-7, day=0)
    outcome, title = outcome_and_title(api, east)
    assert outcome == "restricted"
    assert title is not None and title.startswith("Signboard in no-sign zone 'Hang Dao east side' near ")
    assert title.endswith(": heritage street: no signs")
    outcome, west_title = outcome_and_title(api, west)
    assert outcome == "new" and (west_title or "").startswith("New signboard near ")  # across the street

    # The API shows the case and its title to dispatchers; one marks it permitted (the register).
    with api.sessions() as session:
        case_id = session.scalars(select(SignSighting.case_id).where(SignSighting.event_id == east)).one()
    shown = api.get(f"/api/v1/cases/{case_id}").json()
    assert shown["title"] == title
    reply = api.post(
        f"/api/v1/cases/{case_id}/actions", json={"action": "reject", "reject_reason": "permitted"}
    )
    assert reply.status_code == 200, reply.text

    again = sighting(api, east_sign, north_m=100, east_m=6, day=1)
    assert outcome_and_title(api, again) == ("attached", None)  # the permit stands inside the zone


def test_a_later_event_of_the_track_that_opens_a_case_names_the_zone_too(api: Api, tmp_path: Path) -> None:
    """The track's decision is read back from the database, which keeps the outcome, not the zone."""
    api.settings = api.settings.model_copy(
        update={"signs": SignSettings(no_sign_zones=str(zone_file(tmp_path)))}
    )
    crop = _jpeg(fixture_crops()[0])
    track = uuid.uuid4()
    first = sighting(api, crop, north_m=100, east_m=7, day=0, track_id=track)
    with api.sessions() as session:
        case_id = session.scalars(select(SignSighting.case_id).where(SignSighting.event_id == first)).one()
    for action in ("confirm", "resolve"):  # a crew took the sign down...
        assert api.post(f"/api/v1/cases/{case_id}/actions", json={"action": action}).status_code == 200
    later = sighting(api, crop, north_m=100, east_m=7, day=0, track_id=track, later_s=120)  # ...it is back
    outcome, title = outcome_and_title(api, later)
    assert outcome == "restricted"
    assert title is not None and title.startswith("Signboard in no-sign zone 'Hang Dao east side' near "), (
        title
    )
    with api.sessions() as session:
        reopened = session.scalars(select(SignSighting.case_id).where(SignSighting.event_id == later)).one()
    assert reopened != case_id


def test_the_zones_are_listed_for_maps(api: Api, tmp_path: Path) -> None:
    assert api.get("/api/v1/signs/zones").json() == {"items": []}  # none configured
    app = api.client.app
    plain = app.state.settings
    app.state.settings = plain.model_copy(
        update={"signs": SignSettings(no_sign_zones=str(zone_file(tmp_path)))}
    )
    try:
        (zone,) = api.get("/api/v1/signs/zones").json()["items"]
        assert zone["name"] == "Hang Dao east side" and zone["reason"] == "heritage street: no signs"
        (polygon,) = zone["polygons"]
        (ring,) = polygon
        assert len(ring) == 5 and ring[0] == ring[-1]
        lat, lon = offset_position(0, 3)
        assert ring[0] == [lon, lat]  # GeoJSON order: longitude first
        assert api.client.get("/api/v1/signs/zones").status_code == 401  # no token: nothing
    finally:
        app.state.settings = plain

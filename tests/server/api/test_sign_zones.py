"""No-sign zones through the ingest and the API, on SQLite and PostgreSQL, with real sign crops.

A heritage street's east side is a no-sign zone. A patrol van drives north up the street; its box
places each sign it passes. A sign on the east side opens a "signboard in a no-sign zone" case; the
same kind of sign across the street opens a plain "new signboard" case. Once the permit office has
permitted the east-side sign (the dispatcher marks its case permitted), the next pass attaches to it.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

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


def test_a_later_event_of_the_track_that_opens_a_case_names_the_zone_it_was_decided_in(
    api: Api, tmp_path: Path
) -> None:
    """The track's decision is read back from its stored sighting, zone included: the zone file was
    edited in between (the zone renamed), and the track's case still names the zone it was opened
    for. A sighting stored without a zone (before sightings kept one) gets the zone its place is in."""
    path = zone_file(tmp_path)
    api.settings = api.settings.model_copy(
        update={"signs": SignSettings(no_sign_zones=str(path), no_sign_zones_check_s=0)}
    )
    crop = _jpeg(fixture_crops()[0])
    track = uuid.uuid4()
    first = sighting(api, crop, north_m=100, east_m=7, day=0, track_id=track)
    with api.sessions() as session:
        case_id = session.scalars(select(SignSighting.case_id).where(SignSighting.event_id == first)).one()
        stored = session.scalars(select(SignSighting).where(SignSighting.event_id == first)).one()
        assert (stored.zone_name, stored.zone_reason) == ("Hang Dao east side", "heritage street: no signs")
    corners = [offset_position(n, e) for n, e in ((0, 3), (0, 12), (300, 12), (300, 3), (0, 3))]
    renamed = write_zones(tmp_path, zone_feature("Hang Dao heritage street", "renamed", corners))
    os.utime(renamed, ns=(time.time_ns() + 10**9,) * 2)  # saved later than the first version
    assert [z.name for z in api.settings.signs.zones] == ["Hang Dao heritage street"]

    def take_down_and_see_again(later_s: float) -> tuple[str, str | None, int | None]:
        with api.sessions() as session:
            open_case = session.scalars(
                select(SignSighting.case_id)
                .where(SignSighting.track_id == track)
                .order_by(SignSighting.id.desc())
            ).first()
        for action in ("confirm", "resolve"):  # a crew took the sign down...
            reply = api.post(f"/api/v1/cases/{open_case}/actions", json={"action": action})
            assert reply.status_code == 200, reply.text
        later = sighting(api, crop, north_m=100, east_m=7, day=0, track_id=track, later_s=later_s)  # ...back
        outcome, title = outcome_and_title(api, later)
        with api.sessions() as session:
            reopened = session.scalars(
                select(SignSighting.case_id).where(SignSighting.event_id == later)
            ).one()
        return outcome, title, reopened

    outcome, title, reopened = take_down_and_see_again(120)
    assert outcome == "restricted" and reopened != case_id
    assert title is not None and title.startswith("Signboard in no-sign zone 'Hang Dao east side' near "), (
        title
    )
    with api.sessions() as session:  # as a sighting stored before sightings kept their zone
        session.execute(update(SignSighting).values(zone_name=None, zone_reason=None))
        session.commit()
    outcome, title, _ = take_down_and_see_again(240)
    assert outcome == "restricted"
    assert title is not None and title.startswith("Signboard in no-sign zone 'Hang Dao heritage street' ")


def test_a_zone_added_while_the_server_runs_applies_to_the_next_sighting(api: Api, tmp_path: Path) -> None:
    """The bureau designates the west side too; nobody restarts anything. A broken save of the file
    keeps the zones before, and the zone list says why."""
    path = zone_file(tmp_path)
    api.settings = api.settings.model_copy(
        update={"signs": SignSettings(no_sign_zones=str(path), no_sign_zones_check_s=0)}
    )
    api.client.app.state.settings = api.settings
    east_sign, west_sign, other_sign = (_jpeg(crop) for crop in fixture_crops()[:3])
    assert outcome_and_title(api, sighting(api, west_sign, north_m=60, east_m=-7, day=0))[0] == "new"

    east = [offset_position(n, e) for n, e in ((0, 3), (0, 12), (300, 12), (300, 3), (0, 3))]
    west = [offset_position(n, e) for n, e in ((0, -12), (0, -3), (300, -3), (300, -12), (0, -12))]
    saved = write_zones(
        tmp_path,
        zone_feature("Hang Dao east side", "heritage street: no signs", east),
        zone_feature("Hang Dao west side", "heritage street: no signs", west),
    )
    os.utime(saved, ns=(time.time_ns() + 10**9,) * 2)
    outcome, title = outcome_and_title(api, sighting(api, other_sign, north_m=200, east_m=-7, day=0))
    assert outcome == "restricted"
    assert title is not None and title.startswith("Signboard in no-sign zone 'Hang Dao west side' near ")
    listed = api.get("/api/v1/signs/zones").json()
    assert [z["name"] for z in listed["items"]] == ["Hang Dao east side", "Hang Dao west side"]
    assert listed["problem"] is None and listed["read_at"] is not None

    saved.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature"')  # a broken save
    os.utime(saved, ns=(time.time_ns() + 2 * 10**9,) * 2)
    listed = api.get("/api/v1/signs/zones").json()
    assert [z["name"] for z in listed["items"]] == ["Hang Dao east side", "Hang Dao west side"]
    assert "is not JSON" in listed["problem"] and listed["problem"].endswith("stay in force")
    outcome, _ = outcome_and_title(api, sighting(api, east_sign, north_m=250, east_m=-7, day=0))
    assert outcome == "restricted"  # ingest goes on with the zones before


def test_the_zones_are_listed_for_maps(api: Api, tmp_path: Path) -> None:
    assert api.get("/api/v1/signs/zones").json() == {"items": [], "read_at": None, "problem": None}
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


def test_with_the_register_off_a_sign_in_a_zone_still_says_so(api: Api, tmp_path: Path) -> None:
    """``signs.enabled: false``: every sign is a case, as before; one in a zone is titled by it."""
    api.settings = api.settings.model_copy(
        update={"signs": SignSettings(enabled=False, no_sign_zones=str(zone_file(tmp_path)))}
    )
    east_sign, west_sign = (_jpeg(crop) for crop in fixture_crops()[:2])
    sighting(api, east_sign, north_m=100, east_m=7, day=0)
    sighting(api, west_sign, north_m=160, east_m=-7, day=0)
    with api.sessions() as session:
        titles = [c.title for c in session.scalars(select(Case).order_by(Case.id))]
        assert session.scalars(select(SignSighting)).all() == []  # the register kept nothing
    assert titles[0].startswith("Signboard in no-sign zone 'Hang Dao east side' near ")
    assert "no-sign zone" not in titles[1]

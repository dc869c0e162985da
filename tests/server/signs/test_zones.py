"""No-sign zones: the zone file, and a sign seen in a zone opening a case unless it is registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from server.settings import SignSettings
from server.signs.register import RegisteredSign, SignOutcome, decide_sign
from server.signs.zones import ZoneFileError, read_zones, zone_at
from streetwatch.events import ObjectPosition, ViolationEvent
from tests.server.factories import make_event, offset
from tests.server.signs.test_register import CAP, _fp
from tests.server.signs.zone_files import collection, ring, write_zones, zone_feature

#: A heritage street's east side: 8 m wide, 200 m long, with a temple forecourt cut out of it.
EAST_SIDE = [offset(0, 2), offset(0, 10), offset(200, 10), offset(200, 2), offset(0, 2)]
FORECOURT = [offset(90, 3), offset(90, 9), offset(110, 9), offset(110, 3), offset(90, 3)]


def feature(
    name: Any = "Hang Dao east side", reason: str = "no signs over the pavement", **geometry: Any
) -> dict:
    if not geometry:
        return zone_feature(name, reason, EAST_SIDE, FORECOURT)
    return {"type": "Feature", "properties": {"name": name, "reason": reason}, "geometry": geometry}


def write(tmp_path: Path, *features: Any) -> Path:
    return write_zones(tmp_path, *features)


def settings(tmp_path: Path) -> SignSettings:
    return SignSettings(no_sign_zones=str(write(tmp_path, feature())))


def sighting(north_m: float, east_m: float) -> ViolationEvent:
    """A sign the box placed ``east_m`` east of the route (the van's fix 25 m before it, on the route)."""
    event = make_event(violation_type="illegal_signboard", north_m=north_m - 25)
    lat, lon = offset(north_m, east_m)
    place = ObjectPosition(lat=lat, lon=lon, accuracy_m=3.0, along_m=25.0)
    return event.model_copy(update={"object_position": place})


def test_a_point_is_in_the_zone_outside_its_hole_and_not_across_the_street(tmp_path: Path) -> None:
    (zone,) = read_zones(write(tmp_path, feature()))
    assert zone.name == "Hang Dao east side" and zone.reason == "no signs over the pavement"
    assert zone_at([zone], *offset(50, 6)) is zone
    assert zone_at([zone], *offset(100, 6)) is None  # the temple forecourt
    assert zone_at([zone], *offset(50, -6)) is None  # the west side of the street
    assert zone_at([zone], *offset(250, 6)) is None  # beyond its end


def test_a_new_sign_in_the_zone_opens_a_case_that_names_the_zone(tmp_path: Path) -> None:
    rules = settings(tmp_path)
    inside = decide_sign(sighting(50, 6), _fp(0), [], rules, radius_cap_m=CAP, crop_overdue=False)
    assert inside.outcome is SignOutcome.restricted and inside.outcome.opens_case
    assert inside.zone is not None and inside.zone.name == "Hang Dao east side"
    title = inside.case_title(sighting(50, 6))
    assert title.startswith("Signboard in no-sign zone 'Hang Dao east side' near ")
    assert title.endswith(": no signs over the pavement")
    across = decide_sign(sighting(50, -6), _fp(0), [], rules, radius_cap_m=CAP, crop_overdue=False)
    assert across.outcome is SignOutcome.new  # the other side of the road: only "new"


def test_the_side_the_box_placed_the_sign_on_decides_not_the_vans_lane(tmp_path: Path) -> None:
    unplaced = make_event(violation_type="illegal_signboard", north_m=50)  # the van's fix, on the route
    decision = decide_sign(unplaced, _fp(0), [], settings(tmp_path), radius_cap_m=CAP, crop_overdue=False)
    assert decision.outcome is SignOutcome.new


def test_a_registered_sign_in_the_zone_stays_attached_and_a_changed_one_is_restricted(tmp_path: Path) -> None:
    rules = settings(tmp_path)
    lat, lon = offset(50, 6)
    permitted = RegisteredSign(7, lat, lon, (_fp(0),))
    same = decide_sign(sighting(50, 6), _fp(0), [permitted], rules, radius_cap_m=CAP, crop_overdue=False)
    assert same.outcome is SignOutcome.attached and same.sign_id == 7  # the permit office's decision
    other = decide_sign(sighting(50, 6), _fp(3), [permitted], rules, radius_cap_m=CAP, crop_overdue=False)
    assert other.outcome is SignOutcome.restricted and other.sign_id == 7
    assert "looks different" in other.reason


def test_without_a_zone_file_nothing_changes() -> None:
    decision = decide_sign(sighting(50, 6), _fp(0), [], SignSettings(), radius_cap_m=CAP, crop_overdue=False)
    assert decision.outcome is SignOutcome.new


SWAPPED = [[21.0, 105.0], [21.0, 105.1], [21.1, 105.1], [21.0, 105.0]]  # latitude first
OPEN = [[105.0, 21.0], [105.1, 21.0], [105.1, 21.1], [105.0, 21.1]]  # does not end where it starts


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("not json", "is not JSON"),
        (json.dumps({"type": "Feature"}), "must be a GeoJSON FeatureCollection"),
        (json.dumps({"type": "FeatureCollection", "features": {}}), "'features' must be a list"),
        (collection(feature(name="")), "feature 0: needs a 'name'"),
        (
            collection(feature(type="Point", coordinates=[1, 2])),
            "must be a Polygon or a MultiPolygon, not 'Point'",
        ),
        (
            collection(feature(), feature(name="Swapped", type="Polygon", coordinates=[SWAPPED])),
            r"feature 1: 'Swapped': \[21.0, 105.0\] is not a longitude and latitude \(in that order\)",
        ),
        (collection(feature(type="Polygon", coordinates=[OPEN])), "a ring must end where it starts"),
    ],
)
def test_a_bad_zone_file_is_refused_when_the_settings_load(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "zones.geojson"
    path.write_text(content)
    with pytest.raises(ZoneFileError, match=complaint):
        read_zones(path)
    with pytest.raises(ValidationError, match=complaint):  # the server does not start with it
        SignSettings(no_sign_zones=str(path))


def test_a_missing_zone_file_says_which(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"cannot read the no-sign zone file .*nowhere\.geojson"):
        SignSettings(no_sign_zones=str(tmp_path / "nowhere.geojson"))


def test_a_multipolygon_zone_holds_each_of_its_parts(tmp_path: Path) -> None:
    west = [offset(0, -10), offset(0, -2), offset(30, -2), offset(30, -10), offset(0, -10)]
    both = feature(name="Both ends", type="MultiPolygon", coordinates=[[ring(EAST_SIDE)], [ring(west)]])
    zones = read_zones(write(tmp_path, both))
    assert zone_at(zones, *offset(10, -6)) is not None and zone_at(zones, *offset(10, 6)) is not None
    assert zone_at(zones, *offset(60, -6)) is None


def test_the_cli_checks_a_zone_file_and_looks_points_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from streetwatch.cli import main

    path = write(tmp_path, feature())
    lat, lon = offset(50, 6)
    assert (
        main(["signs", "zones", str(path), "--at", str(lat), str(lon), "--at", *map(str, offset(50, -6))])
        == 0
    )
    out = capsys.readouterr().out
    assert "'Hang Dao east side': no signs over the pavement (1 part(s), spanning 8 m east-west" in out
    assert f"{path}: 1 no-sign zone(s)" in out
    assert f"{lat:.6f},{lon:.6f}: in 'Hang Dao east side'" in out and ": in no zone" in out
    path.write_text(collection(feature(name="")))
    assert main(["signs", "zones", str(path)]) == 1
    assert "feature 0: needs a 'name' property" in capsys.readouterr().err

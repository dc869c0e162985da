"""The pure case matcher, on event sequences with an injected clock."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from server.db.models import CaseState
from server.matching.geo import haversine_m
from server.matching.geohash import cells_covering, decode_bbox, encode
from server.matching.matcher import CaseCandidate, MatchAction, match_event
from server.settings import CELL_PRECISION, ServerSettings
from streetwatch.events import ViolationType
from tests.server.factories import T0, make_event, offset

SETTINGS = ServerSettings()
NOW = T0 + timedelta(minutes=1)


def case_at(
    case_id: int,
    north_m: float = 0.0,
    *,
    violation: str = "garbage_overflow",
    state: CaseState = CaseState.new,
    last_event_at=T0,
    finished_at=None,
    device_id: str = "van-01",
    track_id: uuid.UUID | None = None,
    same_track: bool = False,
) -> CaseCandidate:
    lat, lon = offset(north_m)
    return CaseCandidate(
        case_id=case_id,
        violation_type=ViolationType(violation),
        state=state,
        lat=lat,
        lon=lon,
        last_event_at=last_event_at,
        finished_at=finished_at,
        device_id=device_id,
        track_id=track_id or uuid.uuid4(),
        same_track=same_track,
    )


def rule(violation: str = "garbage_overflow"):
    return SETTINGS.rule(violation)


def test_haversine_matches_a_known_distance() -> None:
    # One degree of latitude is about 111.2 km on the mean sphere.
    assert haversine_m(0, 0, 1, 0) == pytest.approx(111_195, rel=1e-3)
    a, b = offset(0, 0), offset(20, 0)
    assert haversine_m(*a, *b) == pytest.approx(20, abs=0.05)


def test_default_radii_per_type() -> None:
    assert rule("street_vending").radius_m == 30
    assert rule("garbage_overflow").radius_m == 20
    assert rule("illegal_signboard").radius_m == 15
    assert rule("unsealed_truck").moving


def test_no_candidates_opens_a_new_case() -> None:
    decision = match_event(make_event(), [], rule(), NOW)
    assert decision.action is MatchAction.new
    assert decision.case_id is None


def test_event_within_radius_joins_and_beyond_radius_does_not() -> None:
    near = match_event(make_event(north_m=15), [case_at(1)], rule(), NOW)
    far = match_event(make_event(north_m=25), [case_at(1)], rule(), NOW)
    assert near.action is MatchAction.join and near.case_id == 1
    assert near.distance_m == pytest.approx(15, abs=0.1)
    assert far.action is MatchAction.new


def test_radius_is_per_type() -> None:
    vending = match_event(
        make_event(violation_type="street_vending", north_m=25),
        [case_at(1, violation="street_vending")],
        rule("street_vending"),
        NOW,
    )
    signboard = match_event(
        make_event(violation_type="illegal_signboard", north_m=25),
        [case_at(1, violation="illegal_signboard")],
        rule("illegal_signboard"),
        NOW,
    )
    assert vending.action is MatchAction.join
    assert signboard.action is MatchAction.new


def test_other_types_are_never_joined() -> None:
    decision = match_event(make_event(), [case_at(1, violation="street_vending")], rule(), NOW)
    assert decision.action is MatchAction.new


def test_nearest_of_several_open_cases_wins() -> None:
    cases = [case_at(1, north_m=-15), case_at(2, north_m=4), case_at(3, north_m=12)]
    decision = match_event(make_event(north_m=2), cases, rule(), NOW)
    assert decision.case_id == 2


def test_case_outside_the_join_window_is_not_joined() -> None:
    window = timedelta(seconds=rule().join_window_s)
    stale = case_at(1, last_event_at=T0 - window - timedelta(seconds=1))
    fresh = case_at(2, last_event_at=T0 - window + timedelta(seconds=1))
    assert match_event(make_event(), [stale], rule(), NOW).action is MatchAction.new
    assert match_event(make_event(), [fresh], rule(), NOW).case_id == 2


def test_device_clock_ahead_is_clamped_to_the_server_clock() -> None:
    case = case_at(1, last_event_at=T0)
    event = make_event(at=T0 + timedelta(days=30))  # a box whose clock runs a month ahead
    assert match_event(event, [case], rule(), now=T0 + timedelta(hours=1)).action is MatchAction.join
    assert match_event(event, [case], rule(), now=T0 + timedelta(days=30)).action is MatchAction.new


def test_recently_closed_case_is_linked_as_recurrence() -> None:
    closed = case_at(
        1, state=CaseState.closed, finished_at=T0 - timedelta(days=2), last_event_at=T0 - timedelta(days=3)
    )
    decision = match_event(make_event(north_m=5), [closed], rule(), NOW)
    assert decision.action is MatchAction.recurrence and decision.case_id == 1


def test_closed_long_ago_or_far_away_is_a_plain_new_case() -> None:
    window = timedelta(seconds=rule().recurrence_window_s)
    old = case_at(
        1, state=CaseState.closed, finished_at=T0 - window - timedelta(hours=1), last_event_at=T0 - window
    )
    far = case_at(2, north_m=60, state=CaseState.resolved, finished_at=T0 - timedelta(hours=1))
    assert match_event(make_event(), [old, far], rule(), NOW).action is MatchAction.new


def test_open_case_is_preferred_over_a_recurrence() -> None:
    closed = case_at(1, state=CaseState.closed, finished_at=T0 - timedelta(hours=1))
    open_case = case_at(2, north_m=10)
    assert match_event(make_event(), [closed, open_case], rule(), NOW).case_id == 2


def test_rejected_case_absorbs_repeats_instead_of_reopening() -> None:
    rejected = case_at(1, state=CaseState.rejected)
    decision = match_event(make_event(north_m=3), [rejected], rule(), NOW)
    assert decision.action is MatchAction.join and decision.case_id == 1


def test_same_track_joins_even_after_the_camera_moved() -> None:
    track = uuid.uuid4()
    moved = match_event(make_event(north_m=80, track_id=track), [case_at(1, same_track=True)], rule(), NOW)
    assert moved.action is MatchAction.join and moved.case_id == 1


def test_moving_trucks_match_by_device_and_track_not_place() -> None:
    track = uuid.uuid4()
    truck_rule = rule("unsealed_truck")
    case = case_at(7, violation="unsealed_truck", device_id="van-01", track_id=track)
    same = make_event(violation_type="unsealed_truck", track_id=track, north_m=400)
    other_track = make_event(violation_type="unsealed_truck", north_m=0)
    other_device = make_event(violation_type="unsealed_truck", device_id="van-02", track_id=track)
    late = make_event(violation_type="unsealed_truck", track_id=track, at=T0 + timedelta(hours=1))
    assert match_event(same, [case], truck_rule, NOW).case_id == 7
    assert match_event(other_track, [case], truck_rule, NOW).action is MatchAction.new
    assert match_event(other_device, [case], truck_rule, NOW).action is MatchAction.new
    assert match_event(late, [case], truck_rule, late.observed_at).action is MatchAction.new


def test_event_without_position_only_joins_its_own_track() -> None:
    event = make_event(position=False)
    assert match_event(event, [case_at(1)], rule(), NOW).action is MatchAction.new
    assert match_event(event, [case_at(1, same_track=True)], rule(), NOW).case_id == 1


def test_a_sequence_of_sightings_makes_one_case_per_spot() -> None:
    """Replay: two vans pass a bin and a stall several times; cases accumulate as the matcher says."""
    cases: list[CaseCandidate] = []
    sightings = [
        ("garbage_overflow", 0, 0),
        ("garbage_overflow", 8, 10),
        ("street_vending", 5, 20),
        ("garbage_overflow", -6, 30),
        ("garbage_overflow", 120, 40),
        ("street_vending", 28, 50),
    ]
    for violation, north, minute in sightings:
        event = make_event(violation_type=violation, north_m=north, at=T0 + timedelta(minutes=minute))
        decision = match_event(event, cases, rule(violation), event.observed_at)
        if decision.action is MatchAction.new:
            cases.append(case_at(len(cases) + 1, north, violation=violation, last_event_at=event.observed_at))
    kinds = sorted((c.violation_type.value, round(c.lat, 4)) for c in cases)
    assert len(cases) == 3, kinds


def test_geohash_encodes_the_reference_point() -> None:
    assert encode(57.64911, 10.40744, 11) == "u4pruydqqvj"
    south, west, north, east = decode_bbox(encode(31.23, 121.47, CELL_PRECISION))
    assert south <= 31.23 <= north and west <= 121.47 <= east


@pytest.mark.parametrize("lat", [0.0, 31.23, 59.9])
def test_cells_covering_hold_every_point_within_the_radius(lat: float) -> None:
    import math
    import random

    rng = random.Random(lat)
    for _ in range(200):
        lon = rng.uniform(-179, 179)
        cells = set(cells_covering(lat, lon, 70, CELL_PRECISION))
        assert 1 <= len(cells) <= 9
        bearing = rng.uniform(0, 2 * math.pi)
        dist = rng.uniform(0, 69.9)
        dlat = dist * math.cos(bearing) / 111_195
        dlon = dist * math.sin(bearing) / (111_195 * math.cos(math.radians(lat)))
        assert encode(lat + dlat, lon + dlon, CELL_PRECISION) in cells


def test_a_sign_case_holding_another_object_of_the_same_frames_is_not_joined_by_place() -> None:
    """Signs keep one object per case: a case the caller marks ``seen_together`` (it holds another
    track of the event's box from the same moment) is another sign. Unmarked, a case near by is
    joined as before (another pass, another van); garbage ignores the mark: one case per spot."""
    beside = make_event(violation_type="illegal_signboard", at=T0, north_m=4.0)
    sign = case_at(1, 3.0, violation="illegal_signboard")
    other_sign = replace(sign, seen_together=True)
    assert match_event(beside, [other_sign], rule("illegal_signboard"), NOW).action is MatchAction.new
    assert match_event(beside, [sign], rule("illegal_signboard"), NOW).case_id == 1
    farther = case_at(2, 10.0, violation="illegal_signboard")
    assert match_event(beside, [other_sign, farther], rule("illegal_signboard"), NOW).case_id == 2
    assert (
        match_event(beside, [replace(other_sign, same_track=True)], rule("illegal_signboard"), NOW).case_id
        == 1
    )
    pile = replace(case_at(3, 3.0), seen_together=True)
    assert match_event(make_event(at=T0, north_m=4.0), [pile], rule(), NOW).case_id == 3

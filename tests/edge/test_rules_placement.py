"""The rule engine places stationary objects seen from a moving camera, and can hold 'new' for it."""

from __future__ import annotations

from collections.abc import Sequence

from edge.config import ClassMapping, RuleConfig
from edge.location.geo import distance_m
from edge.rules import RuleEngine
from streetwatch.events import Position, ViolationEvent, ViolationType
from tests.edge.rules_support import HEIGHT, MODELS, frame_at, kinds, tracked
from tests.edge.test_placement import camera, north_of_start

SIGN_AT_M = 100.0
MAPPING = [
    ClassMapping(detector_class="signboard", violation_type=ViolationType.illegal_signboard, candidate=True),
    ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck, candidate=True),
]


def engine(await_place_s: float = 0.0) -> RuleEngine:
    rule = RuleConfig(
        min_score=0.3,
        min_box_area_px=0,
        confirm_frames=3,
        confirm_window=3,
        end_after_s=2,
        cooldown_s=0,
        await_place_s=await_place_s,
    )
    rules = {ViolationType.illegal_signboard: rule, ViolationType.unsealed_truck: rule}
    return RuleEngine(MAPPING, rules, device_id="van-7", camera_id="front", models=MODELS)


def box_at(depth_m: float, grows: bool = True) -> tuple[float, float, float, float]:
    """A 1.2 m object through a 500 px focal length, ``depth_m`` ahead; a still photo's box when not grows."""
    height = 500 * 1.2 / (depth_m if grows else 40.0)
    return (300.0, 200.0 - height / 2, 300.0 + height, 200.0 + height / 2)


def approach(
    eng: RuleEngine,
    camera_m: Sequence[float],
    cls: str = "signboard",
    grows: bool = True,
    source: str = "gpx",
    tail_s: int = 4,
) -> list[ViolationEvent]:
    """One frame every 0.2 s at each camera position, then ``tail_s`` seconds of empty frames."""
    events: list[ViolationEvent] = []
    t = 0.0
    for i, s in enumerate(camera_m):
        rows = [(1, cls, 0.8, box_at(SIGN_AT_M - s, grows))]
        result = eng.trigger(frame_at(t, i), tracked(rows), camera(s, source=source))
        events += [ViolationEvent.from_json(te.event.to_json()) for te in result.events]
        t += 0.2
    for j in range(tail_s * 5):
        result = eng.trigger(frame_at(t, len(camera_m) + j), tracked([]), camera(camera_m[-1], source=source))
        events += [ViolationEvent.from_json(te.event.to_json()) for te in result.events]
        t += 0.2
    return events


def off_by_m(event: ViolationEvent) -> float:
    assert event.object_position is not None, f"{event.lifecycle.value} event without a place"
    return distance_m(event.object_position.lat, event.object_position.lon, *north_of_start(SIGN_AT_M))


def test_without_a_hold_new_goes_out_at_confirmation_and_later_events_bring_the_place() -> None:
    events = approach(engine(), [60.0 + 1.5 * i for i in range(12)])
    assert kinds(events) == ["new", "end"]
    new, end = events
    assert new.frames_seen == 3 and new.object_position is None  # three frames cannot tell yet
    assert off_by_m(end) < 1.0
    assert end.position is not None and distance_m(end.position.lat, end.position.lon,
                                                   *north_of_start(SIGN_AT_M)) > 20  # fmt: skip


def test_a_hold_sends_new_once_the_place_is_known_and_with_it() -> None:
    events = approach(engine(await_place_s=10), [60.0 + 1.5 * i for i in range(12)])
    assert kinds(events) == ["new", "end"]
    new = events[0]
    assert 3 < new.frames_seen < 12  # held past confirmation, sent before the track ended
    assert off_by_m(new) < 1.0
    assert new.sequence == 0 and events[1].sequence == 1


def test_a_held_sign_whose_place_never_comes_is_reported_when_its_track_ends() -> None:
    events = approach(engine(await_place_s=10), [60.0 + 1.5 * i for i in range(12)], grows=False)
    assert kinds(events) == ["new", "end"]
    new, end = events
    assert new.object_position is None and new.frames_seen == 12  # at the end, nothing lost
    assert new.observed_at == end.observed_at and (new.sequence, end.sequence) == (0, 1)


def test_a_held_sign_is_reported_when_the_time_is_up() -> None:
    events = approach(engine(await_place_s=1), [60.0 + 0.5 * i for i in range(30)], grows=False)
    assert kinds(events) == ["new", "end"]
    held_for = (events[0].observed_at - events[0].first_seen_at).total_seconds()
    assert 1.4 <= held_for <= 1.8  # confirmed at 0.4 s, then held 1 s (frames every 0.2 s)


def test_trucks_move_so_they_are_neither_placed_nor_held() -> None:
    events = approach(engine(await_place_s=10), [60.0 + 1.5 * i for i in range(12)], cls="truck")
    assert kinds(events) == ["new", "end"]
    assert events[0].frames_seen == 3
    assert all(e.object_position is None for e in events)


def test_a_fixed_camera_is_neither_placed_nor_held() -> None:
    events = approach(engine(await_place_s=10), [60.0 + 1.5 * i for i in range(12)], source="fixed")
    assert kinds(events) == ["new", "end"]
    assert events[0].frames_seen == 3
    assert all(e.object_position is None for e in events)


def test_the_hold_is_off_by_default() -> None:
    assert RuleConfig().await_place_s == 0
    assert HEIGHT == 480 and isinstance(camera(0.0), Position)  # the frame the boxes are drawn in

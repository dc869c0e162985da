"""Rule engine on synthetic tracked detections and frame times."""

from __future__ import annotations

import pytest

from edge.config import ClassMapping, RuleConfig, Zone
from edge.rules import RuleEngine
from streetwatch.events import Lifecycle, ViolationType
from tests.edge.rules_support import MODELS, POSITION, Step, absent, engine, frame_at, kinds, run, tracked

TRUCK = ViolationType.unsealed_truck
VEND = ViolationType.street_vending
BOX = (100.0, 100.0, 300.0, 260.0)


def test_confirms_after_enough_hits_with_median_score() -> None:
    eng = engine({TRUCK: RuleConfig(min_score=0.4, confirm_frames=3, confirm_window=5)})
    scores = [0.9, 0.3, 0.5, 0.7]
    events, _ = run(eng, [(i, [(1, "truck", s, BOX)]) for i, s in enumerate(scores)])
    assert kinds(events) == ["new"]
    new = events[0]
    # hits are 0.9, 0.5, 0.7 (0.3 is under min_score): the median is 0.7, not the mean or the last.
    assert new.score == pytest.approx(0.7)
    assert new.observed_at == frame_at(3).timestamp
    assert new.first_seen_at == frame_at(0).timestamp
    assert new.frames_seen == 4
    assert new.sequence == 0
    assert new.candidate is True
    assert new.detector_class == "truck"
    assert new.violation_type is TRUCK
    assert new.device_id == "van-7" and new.camera_id == "front"
    assert new.position == POSITION
    assert new.box == BOX
    assert (new.frame_width, new.frame_height) == (640, 480)
    assert new.model.name == "coco-proxy"


def test_hits_must_fall_within_the_window() -> None:
    eng = engine({TRUCK: RuleConfig(min_score=0.5, confirm_frames=3, confirm_window=3)})
    scores = [0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1]  # never 3 hits among the last 3
    events, _ = run(eng, [(i, [(1, "truck", s, BOX)]) for i, s in enumerate(scores)])
    assert events == []
    events, _ = run(eng, [(t, [(1, "truck", 0.9, BOX)]) for t in (8, 9)])
    assert events == []  # the 0.1 at t=7 is still in the window
    events, _ = run(eng, [(10, [(1, "truck", 0.9, BOX)])])
    assert kinds(events) == ["new"]


def test_a_class_map_entry_may_ask_its_class_for_a_higher_score_than_the_rule() -> None:
    mapping = [
        ClassMapping(detector_class="truck", violation_type=TRUCK),
        ClassMapping(detector_class="lorry", violation_type=TRUCK, min_score=0.6),
    ]
    eng = engine({TRUCK: RuleConfig(min_score=0.3, confirm_frames=2, confirm_window=2)}, mapping)
    events, _ = run(eng, [(i, [(1, "lorry", 0.5, BOX)]) for i in range(3)])
    assert events == []  # 0.5 passes the rule's 0.3 but not the class's own 0.6
    events, _ = run(eng, [(i, [(2, "truck", 0.5, BOX)]) for i in range(3, 5)])
    assert kinds(events) == ["new"]


def test_small_boxes_never_count() -> None:
    eng = engine({TRUCK: RuleConfig(min_box_area_px=1000, confirm_frames=2, confirm_window=2)})
    small = (10.0, 10.0, 40.0, 40.0)  # 900 px²
    events, _ = run(eng, [(i, [(1, "truck", 0.9, small)]) for i in range(5)])
    assert events == []
    big = (10.0, 10.0, 50.0, 40.0)  # 1200 px²
    events, _ = run(eng, [(i, [(2, "truck", 0.9, big)]) for i in range(5, 7)])
    assert kinds(events) == ["new"]


def test_dwell_delays_stationary_violations() -> None:
    eng = engine({VEND: RuleConfig(confirm_frames=2, confirm_window=3, dwell_s=20)})
    steps: list[Step] = [(t, [(4, "umbrella", 0.8, BOX)]) for t in range(0, 30, 5)]
    events, _ = run(eng, steps)
    assert kinds(events) == ["new"]
    assert events[0].observed_at == frame_at(20).timestamp


def test_include_zone_uses_the_bottom_centre() -> None:
    kerb = Zone(name="kerb", kind="include", polygon=[(0, 250), (640, 250), (640, 480), (0, 480)])
    eng = engine({TRUCK: RuleConfig(confirm_frames=2, confirm_window=2, zones=[kerb])})
    above = (100.0, 50.0, 200.0, 200.0)  # bottom centre (150, 200): outside
    standing = (100.0, 50.0, 200.0, 300.0)  # top is outside, bottom centre (150, 300) inside
    events, _ = run(eng, [(i, [(1, "truck", 0.9, above)]) for i in range(4)])
    assert events == []
    events, _ = run(eng, [(i, [(2, "truck", 0.9, standing)]) for i in range(4, 6)])
    assert kinds(events) == ["new"]


def test_exclude_zone_suppresses() -> None:
    lot = Zone(name="parking", kind="exclude", polygon=[(0, 0), (320, 0), (320, 480), (0, 480)])
    eng = engine({TRUCK: RuleConfig(confirm_frames=2, confirm_window=2, zones=[lot])})
    left = (10.0, 10.0, 200.0, 200.0)
    right = (400.0, 10.0, 600.0, 200.0)
    events, _ = run(eng, [(i, [(1, "truck", 0.9, left), (2, "truck", 0.9, right)]) for i in range(3)])
    assert kinds(events) == ["new"]
    assert events[0].box == right


def test_updates_are_throttled_and_need_a_change() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=1, confirm_window=1, update_interval_s=10)})
    # Steady score: nothing changes after 'new', so no update however long it stays.
    events, _ = run(eng, [(t, [(1, "truck", 0.6, BOX)]) for t in range(0, 40)])
    assert kinds(events) == ["new"]
    # A better frame at t=41 and t=45: only one update, and only once 10 s passed since the last event.
    events, _ = run(eng, [(41, [(1, "truck", 0.8, BOX)]), (45, [(1, "truck", 0.9, BOX)])])
    assert kinds(events) == ["update"]
    assert events[0].sequence == 1
    events, _ = run(eng, [(50, [(1, "truck", 0.95, BOX)]), (55, [(1, "truck", 0.95, BOX)])])
    assert kinds(events) == ["update"]
    assert events[0].observed_at == frame_at(55).timestamp
    assert events[0].sequence == 2


def test_dwelling_violations_update_while_present() -> None:
    eng = engine({VEND: RuleConfig(confirm_frames=1, confirm_window=1, update_interval_s=10, dwell_s=5)})
    events, _ = run(eng, [(t, [(3, "umbrella", 0.7, BOX)]) for t in range(0, 31)])
    assert kinds(events) == ["new", "update", "update"]
    assert [e.observed_at for e in events] == [frame_at(t).timestamp for t in (5, 15, 25)]
    assert len({e.track_id for e in events}) == 1
    assert len({e.event_id for e in events}) == 3


def test_end_after_unseen_timeout() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=2, confirm_window=2, end_after_s=5)})
    steps: list[Step] = [(t, [(1, "truck", 0.9, BOX)]) for t in range(3)] + absent(range(3, 10))
    events, _ = run(eng, steps)
    assert kinds(events) == ["new", "end"]
    end = events[1]
    assert end.track_id == events[0].track_id and end.sequence == 1
    assert end.observed_at == frame_at(2).timestamp  # the last frame it was seen in
    assert end.frames_seen == 3


def test_unconfirmed_tracks_vanish_silently_and_release_their_evidence() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=3, confirm_window=3, end_after_s=2)})
    events, results = run(eng, [(0, [(1, "truck", 0.9, BOX)]), (1, []), (2, []), (3, [])])
    assert events == []
    offered = results[0].offers[0].evidence_key
    assert [k for r in results for k in r.released] == [offered]


def test_cooldown_continues_an_ended_violation() -> None:
    eng = engine({VEND: RuleConfig(confirm_frames=2, confirm_window=2, end_after_s=5, cooldown_s=60)})
    seen: list[Step] = [(t, [(1, "umbrella", 0.8, BOX)]) for t in range(3)]
    gone = absent(range(3, 10))
    shifted = (105.0, 98.0, 305.0, 262.0)
    again: list[Step] = [(t, [(2, "umbrella", 0.8, shifted)]) for t in range(10, 13)]
    events, _ = run(eng, seen + gone + again)
    assert kinds(events) == ["new", "end", "update"]
    assert len({e.track_id for e in events}) == 1
    assert [e.sequence for e in events] == [0, 1, 2]


def test_after_cooldown_a_fresh_violation_is_raised() -> None:
    eng = engine({VEND: RuleConfig(confirm_frames=2, confirm_window=2, end_after_s=5, cooldown_s=10)})
    seen: list[Step] = [(t, [(1, "umbrella", 0.8, BOX)]) for t in range(3)]
    gone = absent(range(3, 30))
    again: list[Step] = [(t, [(2, "umbrella", 0.8, BOX)]) for t in range(30, 33)]
    events, _ = run(eng, seen + gone + again)
    assert kinds(events) == ["new", "end", "new"]
    assert events[0].track_id != events[2].track_id


def test_cooldown_needs_overlap_and_same_type() -> None:
    eng = engine({VEND: RuleConfig(confirm_frames=2, confirm_window=2, end_after_s=5, cooldown_s=60)})
    seen: list[Step] = [(t, [(1, "umbrella", 0.8, BOX)]) for t in range(3)]
    gone = absent(range(3, 10))
    elsewhere: list[Step] = [(t, [(2, "umbrella", 0.8, (400.0, 300.0, 600.0, 460.0))]) for t in range(10, 13)]
    events, _ = run(eng, seen + gone + elsewhere)
    assert kinds(events) == ["new", "end", "new"]
    truck: list[Step] = [(t, [(3, "truck", 0.8, BOX)]) for t in range(13, 16)]
    events, _ = run(eng, truck)
    assert kinds(events) == ["new"] and events[0].violation_type is TRUCK


def test_lost_and_reacquired_track_continues_without_an_end() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=2, confirm_window=2, end_after_s=10)})
    first: list[Step] = [(t, [(1, "truck", 0.9, BOX)]) for t in range(3)]
    gap = absent(range(3, 6))
    second: list[Step] = [(t, [(9, "truck", 0.9, BOX)]) for t in range(6, 9)]
    after = absent(range(9, 25))
    events, _ = run(eng, first + gap + second + after)
    assert kinds(events) == ["new", "end"]
    assert events[0].track_id == events[1].track_id
    assert events[1].observed_at == frame_at(8).timestamp
    assert events[1].frames_seen == 6


def test_candidate_flag_and_class_map_per_detector() -> None:
    mapping = [
        ClassMapping(detector_class="truck", violation_type=TRUCK, candidate=True, detector=0),
        ClassMapping(detector_class="truck", violation_type=TRUCK, candidate=False, detector=1),
    ]
    rules = {TRUCK: RuleConfig(confirm_frames=1, confirm_window=1)}
    proxy, _ = run(engine(rules, mapping), [(0, [(1, "truck", 0.9, BOX)])], detector=0)
    dedicated, _ = run(engine(rules, mapping), [(0, [(1, "truck", 0.9, BOX)])], detector=1)
    assert [e.candidate for e in proxy] == [True]
    assert [e.candidate for e in dedicated] == [False]
    assert dedicated[0].model.name == "streetwatch-det"
    only_second = [ClassMapping(detector_class="truck", violation_type=TRUCK, detector=1)]
    none, _ = run(engine(rules, only_second), [(0, [(1, "truck", 0.9, BOX)])], detector=0)
    assert none == []


def test_unmapped_and_disabled_classes_are_ignored() -> None:
    rules = {TRUCK: RuleConfig(enabled=False, confirm_frames=1, confirm_window=1),
             VEND: RuleConfig(confirm_frames=1, confirm_window=1)}  # fmt: skip
    events, _ = run(engine(rules), [(0, [(1, "truck", 0.9, BOX), (2, "person", 0.9, BOX)])])
    assert events == []


def test_flush_ends_open_violations() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=1, confirm_window=1)})
    events, _ = run(eng, [(0, [(1, "truck", 0.9, BOX), (2, "truck", 0.8, (400.0, 10.0, 500.0, 90.0))])])
    assert kinds(events) == ["new", "new"]
    flushed = eng.flush(frame_at(1).timestamp)
    assert sorted(te.event.lifecycle for te in flushed.events) == [Lifecycle.end, Lifecycle.end]
    assert {te.event.track_id for te in flushed.events} == {e.track_id for e in events}
    assert eng.open_violations == 0


def test_evidence_offers_follow_the_best_score() -> None:
    eng = engine({TRUCK: RuleConfig(min_score=0.5, confirm_frames=1, confirm_window=1)})
    _, results = run(eng, [(t, [(1, "truck", s, BOX)]) for t, s in enumerate([0.6, 0.55, 0.8, 0.3, 0.7])])
    offered = [o.score for r in results for o in r.offers]
    assert offered == pytest.approx([0.6, 0.8])
    keys = {o.evidence_key for r in results for o in r.offers}
    assert keys == {results[0].events[0].evidence_key}


def test_a_second_stage_gets_each_tracks_nearest_view_though_a_far_frame_scores_higher() -> None:
    # A truck coming closer: its box grows while its score falls. The evidence keeps the best score;
    # the load stage's view follows the largest box, for its type only.
    rules = {TRUCK: RuleConfig(min_score=0.5, confirm_frames=1, confirm_window=1)}
    mapping = [
        ClassMapping(detector_class="truck", violation_type=TRUCK, candidate=True),
        ClassMapping(detector_class="umbrella", violation_type=ViolationType.street_vending, candidate=True),
    ]
    eng = RuleEngine(
        mapping, rules, device_id="van-7", camera_id="front", models=MODELS, nearest_view_for=[TRUCK]
    )
    growing = [(100.0, 100.0, 100.0 + side, 100.0 + side) for side in (40, 60, 50, 90)]
    steps = [
        (t, [(1, "truck", s, box), (2, "umbrella", 0.9, box)])
        for t, (s, box) in enumerate(zip([0.9, 0.7, 0.95, 0.6], growing, strict=True))
    ]
    _, results = run(eng, steps)
    assert [o.score for r in results for o in r.offers if o.label == "truck"] == pytest.approx([0.9, 0.95])
    assert [o.box[2] - o.box[0] for r in results for o in r.views] == [40, 60, 90]
    assert {o.label for r in results for o in r.views} == {"truck"}  # vending asks for no view
    assert not any(r.views for r in run(engine(rules), steps)[1])  # nor does a box without a stage


def test_boxes_are_clipped_to_the_frame() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=1, confirm_window=1)})
    events, _ = run(eng, [(0, [(1, "truck", 0.9, (-20.0, 400.0, 700.0, 500.0))])])
    assert events[0].box == (0.0, 400.0, 640.0, 480.0)


def test_untracked_detections_are_refused() -> None:
    eng: RuleEngine = engine()
    untracked = tracked([(1, "truck", 0.9, BOX)])
    untracked = untracked.with_tracker_ids(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tracked"):
        eng.trigger(frame_at(0), untracked, None)


def test_a_new_track_never_takes_over_a_violation_seen_in_the_same_frame() -> None:
    eng = engine({TRUCK: RuleConfig(confirm_frames=2, confirm_window=2)})
    beside = (150.0, 100.0, 350.0, 260.0)  # IoU with BOX is about 0.6
    first: list[Step] = [(t, [(1, "truck", 0.9, BOX)]) for t in range(3)]
    # The newcomer's row comes before the confirmed truck's in every frame.
    both: list[Step] = [(t, [(2, "truck", 0.9, beside), (1, "truck", 0.9, BOX)]) for t in range(3, 6)]
    events, _ = run(eng, first + both)
    assert kinds(events) == ["new", "new"]
    assert events[0].track_id != events[1].track_id
    assert events[1].box == beside

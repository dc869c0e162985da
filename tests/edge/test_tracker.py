"""ByteTracker on synthetic detection sequences with a fake clock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from edge.config import TrackerConfig
from edge.detections import Detections
from edge.geometry import iou_matrix
from edge.tracker import ByteTracker
from edge.tracker.matching import greedy_match

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
NAMES = {0: "person", 25: "umbrella", 7: "truck"}


def dets(*rows: Sequence[float]) -> Detections:
    """Rows of (x1, y1, x2, y2, score, class_id)."""
    if not rows:
        return Detections.empty()
    arr = np.array(rows, dtype=np.float64)
    return Detections(
        xyxy=arr[:, :4].astype(np.float32),
        confidence=arr[:, 4].astype(np.float32),
        class_id=arr[:, 5].astype(np.int64),
        class_name=np.array([NAMES[int(c)] for c in arr[:, 5]]),
    )


class Clock:
    def __init__(self, fps: float) -> None:
        self.step = timedelta(seconds=1 / fps)
        self.now = T0

    def tick(self) -> datetime:
        self.now += self.step
        return self.now


def ids(out: Detections) -> list[int]:
    assert out.tracker_id is not None
    return [int(t) for t in out.tracker_id]


def ids_by_class(out: Detections) -> dict[int, int]:
    assert out.tracker_id is not None
    return {int(c): int(t) for c, t in zip(out.class_id, out.tracker_id, strict=True)}


def test_iou_matrix_values_and_empty_shapes() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 20, 20]])
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20], [100, 100, 110, 110]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou, [[1.0, 0.0, 0.0], [0.25, 0.25, 0.0]])
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_greedy_match_respects_threshold_and_uniqueness() -> None:
    sim = np.array([[0.9, 0.5, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 0.1]])
    pairs, rows, cols = greedy_match(sim, 0.3)
    assert pairs == [(0, 0), (1, 1)]
    assert rows == [2] and cols == [2]


def test_two_objects_crossing_keep_their_ids() -> None:
    """Two people walk towards each other, overlap in the middle, and walk on."""
    tracker = ByteTracker(TrackerConfig())
    clock = Clock(fps=10)
    history: list[dict[float, int]] = []
    for step in range(41):
        a_x = 20 + 10 * step  # left to right
        b_x = 420 - 10 * step  # right to left
        frame = dets((a_x, 100, a_x + 40, 200, 0.9, 0), (b_x, 110, b_x + 40, 210, 0.85, 0))
        out = tracker.update(frame, clock.tick())
        assert out.tracker_id is not None
        history.append({float(out.xyxy[i, 1]): int(out.tracker_id[i]) for i in range(len(out))})
    # From the second frame on both are confirmed; y1 (100 vs 110) tells the two people apart.
    first = history[1]
    assert set(first) == {100.0, 110.0} and first[100.0] != first[110.0]
    for frame_ids in history[1:]:
        assert frame_ids == first


def test_short_occlusion_keeps_the_id_long_one_gets_a_new_id() -> None:
    cfg = TrackerConfig(lost_timeout_s=1.0)
    tracker = ByteTracker(cfg)
    clock = Clock(fps=10)
    box = (100, 100, 160, 220, 0.9, 7)
    for _ in range(5):
        out = tracker.update(dets(box), clock.tick())
    (first_id,) = ids(out)
    for _ in range(8):  # 0.8 s unseen < 1.0 s
        assert len(tracker.update(dets(), clock.tick())) == 0
    tracker.update(dets(box), clock.tick())
    out = tracker.update(dets(box), clock.tick())
    assert ids(out) == [first_id]

    for _ in range(15):  # 1.5 s unseen > 1.0 s: the track is gone
        tracker.update(dets(), clock.tick())
    assert tracker.active_track_count == 0
    assert len(tracker.update(dets(box), clock.tick())) == 0  # tentative again
    out = tracker.update(dets(box), clock.tick())
    (new_id,) = ids(out)
    assert new_id != first_id


def test_a_track_past_its_timeout_does_not_capture_a_box_after_a_gap_in_the_frames() -> None:
    # No frame arrives for longer than the timeout (a stalled stream, the next photo of a replay):
    # the old track is gone, so the box at the same spot is a new object with a new id.
    tracker = ByteTracker(TrackerConfig(lost_timeout_s=3.0))
    box = (100, 100, 160, 220, 0.9, 7)
    tracker.update(dets(box), T0)
    (old_id,) = ids(tracker.update(dets(box), T0 + timedelta(seconds=1)))
    later = T0 + timedelta(seconds=60)
    assert len(tracker.update(dets(box), later)) == 0  # tentative, not the old track continued
    (new_id,) = ids(tracker.update(dets(box), later + timedelta(seconds=1)))
    assert new_id != old_id


@pytest.mark.parametrize("fps", [2, 30])
def test_timeout_is_measured_in_time_not_frames(fps: float) -> None:
    tracker = ByteTracker(TrackerConfig(lost_timeout_s=2.0))
    clock = Clock(fps=fps)
    box = (100, 100, 160, 220, 0.9, 7)
    tracker.update(dets(box), clock.tick())
    (kept,) = ids(tracker.update(dets(box), clock.tick()))
    gap_frames = int(1.5 * fps)  # 1.5 s unseen, whatever the frame rate
    for _ in range(gap_frames):
        tracker.update(dets(), clock.tick())
    assert ids(tracker.update(dets(box), clock.tick())) == [kept]


def test_low_score_frames_keep_a_track_alive_but_do_not_start_one() -> None:
    cfg = TrackerConfig(high_thresh=0.5, low_thresh=0.1, lost_timeout_s=0.5)
    tracker = ByteTracker(cfg)
    clock = Clock(fps=10)
    strong = (200, 50, 260, 200, 0.8, 0)
    weak = (202, 52, 262, 202, 0.2, 0)
    tracker.update(dets(strong), clock.tick())
    (track_id,) = ids(tracker.update(dets(strong), clock.tick()))
    for _ in range(20):  # 2 s of weak detections, far beyond the 0.5 s timeout
        out = tracker.update(dets(weak), clock.tick())
        assert ids(out) == [track_id]
        np.testing.assert_allclose(out.confidence, [0.2])

    fresh = ByteTracker(cfg)
    for _ in range(5):
        assert len(fresh.update(dets(weak), clock.tick())) == 0


def test_below_low_threshold_boxes_are_ignored() -> None:
    tracker = ByteTracker(TrackerConfig(low_thresh=0.1, lost_timeout_s=0.3))
    clock = Clock(fps=10)
    box = (0, 0, 50, 50, 0.9, 0)
    tracker.update(dets(box), clock.tick())
    tracker.update(dets(box), clock.tick())
    for _ in range(5):
        assert len(tracker.update(dets((0, 0, 50, 50, 0.05, 0)), clock.tick())) == 0
    assert tracker.active_track_count == 0


def test_association_is_class_aware() -> None:
    tracker = ByteTracker(TrackerConfig())
    clock = Clock(fps=10)
    umbrella = (100, 100, 200, 200, 0.9, 25)
    tracker.update(dets(umbrella), clock.tick())
    (umbrella_id,) = ids(tracker.update(dets(umbrella), clock.tick()))
    person_same_place = (100, 100, 200, 200, 0.9, 0)
    assert len(tracker.update(dets(person_same_place), clock.tick())) == 0  # a new, tentative person track
    out = tracker.update(dets(person_same_place, umbrella), clock.tick())
    by_class = ids_by_class(out)
    assert by_class[25] == umbrella_id
    assert by_class[0] != umbrella_id


def test_new_track_threshold() -> None:
    tracker = ByteTracker(TrackerConfig(high_thresh=0.5, new_track_thresh=0.7))
    clock = Clock(fps=10)
    medium = (0, 0, 40, 40, 0.6, 0)  # high enough for round 1, too low to start a track
    for _ in range(4):
        assert len(tracker.update(dets(medium), clock.tick())) == 0


def test_moving_object_is_followed_through_a_gap_by_its_velocity() -> None:
    tracker = ByteTracker(TrackerConfig(lost_timeout_s=2.0))
    clock = Clock(fps=10)
    x = 0.0
    for _ in range(15):
        out = tracker.update(dets((x, 100, x + 40, 180, 0.9, 7)), clock.tick())
        x += 8  # 80 px/s
    (track_id,) = ids(out)
    for _ in range(5):  # 0.5 s hidden: it moves 40 px, one box width
        tracker.update(dets(), clock.tick())
        x += 8
    out = tracker.update(dets((x, 100, x + 40, 180, 0.9, 7)), clock.tick())
    assert ids(out) == [track_id]


def test_ids_are_unique_across_resets_and_instances() -> None:
    clock = Clock(fps=10)
    box = (0, 0, 40, 40, 0.9, 0)
    seen: list[int] = []
    for tracker in (ByteTracker(TrackerConfig()), ByteTracker(TrackerConfig())):
        for _ in range(2):
            tracker.update(dets(box), clock.tick())
            seen += ids(tracker.update(dets(box), clock.tick()))
            tracker.reset()
    assert len(seen) == 4 and len(set(seen)) == 4


def test_output_keeps_input_rows_and_order() -> None:
    tracker = ByteTracker(TrackerConfig())
    clock = Clock(fps=10)
    frame = dets((0, 0, 40, 40, 0.9, 0), (300, 0, 340, 40, 0.3, 0), (100, 100, 150, 150, 0.8, 7))
    tracker.update(frame, clock.tick())
    out = tracker.update(frame, clock.tick())
    np.testing.assert_allclose(out.xyxy, frame.xyxy[[0, 2]])  # the weak box never started a track
    assert out.class_name.tolist() == ["person", "truck"]


def test_time_going_backwards_starts_over() -> None:
    tracker = ByteTracker(TrackerConfig())
    box = (0, 0, 40, 40, 0.9, 0)
    tracker.update(dets(box), T0)
    tracker.update(dets(box), T0 + timedelta(seconds=0.1))
    assert tracker.active_track_count == 1
    assert len(tracker.update(dets(box), T0)) == 0
    assert tracker.active_track_count == 0


def test_naive_timestamp_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        ByteTracker(TrackerConfig()).update(dets(), datetime(2024, 1, 1))

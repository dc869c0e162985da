"""Small builders for rule-engine tests: frames at chosen times, tracked detections."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import numpy as np

from edge.config import ClassMapping, RuleConfig
from edge.detections import Detections
from edge.frames import Frame
from edge.rules import RuleEngine, RuleResult
from streetwatch.events import ModelRef, Position, ViolationEvent, ViolationType

T0 = datetime(2026, 5, 4, 8, 0, 0, tzinfo=timezone.utc)
WIDTH, HEIGHT = 640, 480
_IMAGE = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
MODELS = [ModelRef(name="coco-proxy", version="1"), ModelRef(name="streetwatch-det", version="2")]
POSITION = Position(lat=21.03, lon=105.85, source="gpx")

Row = tuple[int, str, float, tuple[float, float, float, float]]  # tracker id, class, score, box
Step = tuple[float, Sequence[Row]]


def absent(times: range) -> list[Step]:
    """Frames in which nothing is detected."""
    return [(t, []) for t in times]


def frame_at(seconds: float, index: int = 0) -> Frame:
    return Frame(image=_IMAGE, timestamp=T0 + timedelta(seconds=seconds), index=index, source="test")


def tracked(rows: Sequence[Row], detector: int = 0) -> Detections:
    if not rows:
        return Detections.empty().with_tracker_ids(np.zeros(0, dtype=np.int64))
    return Detections(
        xyxy=np.array([r[3] for r in rows], dtype=np.float32),
        confidence=np.array([r[2] for r in rows], dtype=np.float32),
        class_id=np.zeros(len(rows), dtype=np.int64),
        class_name=np.array([r[1] for r in rows]),
        detector_index=np.full(len(rows), detector, dtype=np.int64),
        tracker_id=np.array([r[0] for r in rows], dtype=np.int64),
    )


def engine(
    rules: dict[ViolationType, RuleConfig] | None = None,
    class_map: list[ClassMapping] | None = None,
) -> RuleEngine:
    mapping = class_map or [
        ClassMapping(detector_class="truck", violation_type=ViolationType.unsealed_truck, candidate=True),
        ClassMapping(detector_class="umbrella", violation_type=ViolationType.street_vending, candidate=True),
    ]
    return RuleEngine(mapping, rules or {}, device_id="van-7", camera_id="front", models=MODELS)


def run(
    eng: RuleEngine, steps: Sequence[tuple[float, Sequence[Row]]], detector: int = 0
) -> tuple[list[ViolationEvent], list[RuleResult]]:
    """Feed (time, rows) steps; return all events (round-tripped through JSON) and raw results."""
    events: list[ViolationEvent] = []
    results: list[RuleResult] = []
    for i, (t, rows) in enumerate(steps):
        result = eng.trigger(frame_at(t, i), tracked(rows, detector), POSITION)
        results.append(result)
        events += [ViolationEvent.from_json(te.event.to_json()) for te in result.events]
    return events, results


def kinds(events: Sequence[ViolationEvent]) -> list[str]:
    return [e.lifecycle.value for e in events]

"""Mutable bookkeeping of the rule engine: one ``TrackState`` per tracker track and violation type,
one ``Violation`` per confirmed violation (which may outlive the tracker track that confirmed it)."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from uuid import UUID

from edge.config import RuleConfig
from edge.rules.placement import ApproachSamples
from streetwatch.events import ModelRef, Position, ViolationType

BoxT = tuple[float, float, float, float]


@dataclass
class Observation:
    score: float
    hit: bool  # score, area and zones all passed


@dataclass
class TrackState:
    """What the engine knows about one tracker track seen as one violation type."""

    tracker_id: int
    violation_type: ViolationType
    evidence_key: int
    window: deque[Observation]
    first_seen: float
    last_seen: float
    frames: int = 0
    violation: Violation | None = None
    #: The camera's travel and the box's height on each hit: where the object is (placed types).
    approach: ApproachSamples = field(default_factory=ApproachSamples, repr=False)

    def observe(self, when: float, score: float, hit: bool) -> None:
        self.window.append(Observation(score, hit))
        self.last_seen = when
        self.frames += 1

    def confirmed_score(self, rule: RuleConfig) -> float | None:
        """Median score of the hits in the window, once there are at least ``confirm_frames`` of them."""
        hits = [o.score for o in self.window if o.hit]
        if len(hits) < rule.confirm_frames:
            return None
        return float(statistics.median(hits))


@dataclass
class Violation:
    """A confirmed violation: the identity (``track_id``) and the last things reported about it."""

    track_id: UUID
    violation_type: ViolationType
    candidate: bool
    first_seen: float
    evidence_key: int
    best_score: float  # best single-frame hit score behind its evidence
    detector_class: str = ""
    model: ModelRef | None = None
    box: BoxT = (0.0, 0.0, 1.0, 1.0)
    frame_size: tuple[int, int] = (1, 1)  # (width, height)
    score: float = 0.0  # confirmed (median) score
    last_seen: float = 0.0
    position: Position | None = None
    frames_seen: int = 0
    next_sequence: int = 0
    last_emitted: float = 0.0
    reported_best: float = 0.0  # best_score at the last event
    ended_at: float | None = None
    #: Confirmed at this time, its 'new' held for the object's place (``RuleConfig.await_place_s``).
    held_since: float | None = None
    state: TrackState | None = field(default=None, repr=False)

"""The rule engine: turns tracked detections into ``new`` / ``update`` / ``end`` violation events.

Pure and driven by frame time only (no wall clock), so a replay gives the same
events as the live run it records, and tests feed it synthetic timestamps.

Per violation type (``DeviceConfig.rule_for``):

* a detection *hits* when its score, box area and zones pass and the objects the rule
  ``requires`` are seen next to it in the same frame (a person and goods by a stall);
* a track is *confirmed* once ``confirm_frames`` hits fall within its last
  ``confirm_window`` observations and it has been present ``dwell_s``; its
  score is the median of those hits;
* ``update`` at most every ``update_interval_s`` while seen, and only when the
  evidence got better or the violation is a dwelling one (longer presence);
* ``end`` once a confirmed track has been unseen ``end_after_s``;
* cool-down: a newly confirmed track overlapping (IoU) a violation of the same
  type that is unseen or ended less than ``cooldown_s`` ago continues it (same
  ``track_id``, sequence goes on), so a parked stall is not reported twice;
* place: from a moving camera, events of stationary objects (every type but trucks) carry the
  object's own position once its box's growth tells it (``edge.rules.placement``), and a rule
  with ``await_place_s`` holds the ``new`` event until then (or the track's end, or the time).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID, uuid4

from edge.config import ClassMapping, DeviceConfig, RuleConfig
from edge.detections import Detections
from edge.frames import Frame
from edge.geometry import clip_box, iou
from edge.rules.class_map import ClassMap
from edge.rules.co_occurrence import co_occurs
from edge.rules.placement import MOVING_TYPES, ApproachSamples, CameraView
from edge.rules.state import BoxT, TrackState, Violation
from edge.rules.zones import ZoneFilter
from streetwatch.events import (
    ConfigRef,
    Lifecycle,
    ModelRef,
    ObjectPosition,
    Position,
    ViolationEvent,
    ViolationType,
)

#: Minimum IoU between a new track and an earlier violation for the new one to continue it.
CONTINUATION_IOU = 0.3
#: A better frame must beat the reported one by this much to justify an update on its own.
SCORE_EPSILON = 1e-3


@dataclass(frozen=True)
class TriggeredEvent:
    """An event to send, and the key under which its best frame was offered (see ``EvidenceOffer``)."""

    event: ViolationEvent
    evidence_key: int


@dataclass(frozen=True)
class EvidenceOffer:
    """This frame is the best so far for ``evidence_key``: keep it (box in frame pixels)."""

    evidence_key: int
    box: BoxT
    label: str
    score: float


@dataclass
class RuleResult:
    """What one call of the engine produced."""

    events: list[TriggeredEvent] = field(default_factory=list)
    offers: list[EvidenceOffer] = field(default_factory=list)
    #: The nearest view so far (the largest box) of keys a second stage looks at
    #: (``nearest_view_for``): a far truck often scores higher than the same truck close up, but
    #: its load is judged on the crop, so this view, not the best-scoring one, is judged and shown.
    views: list[EvidenceOffer] = field(default_factory=list)
    #: Evidence keys whose frames are no longer needed (track gone, or merged into another key).
    #: Apply offers first, then render evidence for events, then drop these: an 'end' event
    #: still refers to the best frame of a key released in the same call.
    released: list[int] = field(default_factory=list)


class RuleEngine:
    """Confirms violations from tracked detections; one instance per camera.

    ``models[i]`` names the model of detector ``i`` (events carry it); violations of the types in
    ``nearest_view_for`` also offer each track's nearest view (``RuleResult.views``).
    """

    def __init__(
        self,
        class_map: Sequence[ClassMapping],
        rules: Mapping[ViolationType, RuleConfig],
        *,
        device_id: str,
        camera_id: str,
        models: Sequence[ModelRef],
        config: ConfigRef | None = None,
        new_id: Callable[[], UUID] = uuid4,
        nearest_view_for: Collection[ViolationType] = (),
        camera_view: CameraView | None = None,
    ) -> None:
        if not models:
            raise ValueError("RuleEngine needs the ModelRef of at least one detector")
        self._class_map = ClassMap(class_map)
        self._rules = {vt: rules.get(vt, RuleConfig()) for vt in ViolationType}
        self._zones = {vt: ZoneFilter(rule.zones) for vt, rule in self._rules.items()}
        self._device_id = device_id
        self._camera_id = camera_id
        self._models = list(models)
        self._config = config
        self._new_id = new_id
        self._states: dict[tuple[int, ViolationType], TrackState] = {}
        self._ended: list[Violation] = []  # in cool-down, oldest first
        # Best offered score per evidence key: the one record of which frame is a track's best (the
        # evidence recorder keeps whatever frame it is offered).
        self._best: dict[int, float] = {}
        self._nearest_view_for = frozenset(nearest_view_for)
        self._camera_view = camera_view  # places objects beside the path, not only along it
        self._nearest: dict[int, float] = {}  # largest box area offered as a view, per evidence key
        self._present: set[int] = set()  # tracker ids in the frame being processed
        self._next_key = 0

    @classmethod
    def from_config(
        cls, config: DeviceConfig, models: Sequence[ModelRef], running: ConfigRef | None = None
    ) -> RuleEngine:
        """``running``: the name and version of ``config`` when it was installed over the air."""
        # The truck load stage judges a truck on a crop: give it the truck's nearest view.
        stage = config.truck_load
        camera = config.camera
        return cls(
            config.class_map,
            {vt: config.rule_for(vt) for vt in ViolationType},
            device_id=config.device_id,
            camera_id=config.camera_id,
            models=models,
            config=running,
            nearest_view_for=() if stage is None else (stage.violation_type,),
            camera_view=None if camera is None else CameraView(camera.hfov_deg, camera.facing),
        )

    def set_model(self, detector_index: int, model: ModelRef) -> None:
        """Detector ``detector_index`` now runs ``model`` (an update): violations raised from now on name
        it; open ones keep the model that confirmed them."""
        self._model(detector_index)  # the index must exist
        self._models[detector_index] = model

    @property
    def open_violations(self) -> int:
        return sum(1 for s in self._states.values() if s.violation is not None)

    def trigger(self, frame: Frame, detections: Detections, position: Position | None) -> RuleResult:
        """Feed one frame's tracked detections; return the events it causes and evidence to keep."""
        if detections.tracker_id is None and len(detections):
            raise ValueError("RuleEngine.trigger needs tracked detections (tracker_id is None)")
        now = frame.timestamp.timestamp()
        result = RuleResult()
        seen: set[tuple[int, ViolationType]] = set()
        # Tracks in this frame, whatever the row order: a violation whose track is here is not "unseen".
        self._present = set() if detections.tracker_id is None else set(detections.tracker_id.tolist())
        for row in range(len(detections)):
            self._observe_row(frame, detections, row, now, position, seen, result)
        self._expire(now, seen, result)
        return result

    def flush(self, now: datetime) -> RuleResult:
        """End every open violation (end of a run or shutdown); forget all tracks."""
        result = RuleResult()
        for state in list(self._states.values()):
            self._drop_state(state, now.timestamp(), result)
        self._ended.clear()
        return result

    # -- one detection ---------------------------------------------------------------------------

    def _observe_row(
        self,
        frame: Frame,
        dets: Detections,
        row: int,
        now: float,
        position: Position | None,
        seen: set[tuple[int, ViolationType]],
        result: RuleResult,
    ) -> None:
        assert dets.tracker_id is not None
        tracker_id = int(dets.tracker_id[row])
        class_name = str(dets.class_name[row])
        detector_index = int(dets.detector_index[row])
        mapping = self._class_map.lookup(class_name, detector_index)
        if tracker_id < 0 or mapping is None:
            return
        vtype = mapping.violation_type
        rule = self._rules[vtype]
        if not rule.enabled or (tracker_id, vtype) in seen:
            return
        box = clip_box(dets.xyxy[row], frame.width, frame.height)
        if box is None:
            return
        seen.add((tracker_id, vtype))
        score = float(dets.confidence[row])
        area = (box[2] - box[0]) * (box[3] - box[1])
        min_score = rule.min_score if mapping.min_score is None else mapping.min_score
        hit = (
            score >= min_score
            and area >= rule.min_box_area_px
            and self._zones[vtype].allows(box)
            and all(co_occurs(need, box, dets) for need in rule.requires)
        )

        state = self._states.get((tracker_id, vtype))
        if state is None:
            state = TrackState(
                tracker_id=tracker_id,
                violation_type=vtype,
                evidence_key=self._new_key(),
                window=deque(maxlen=rule.confirm_window),
                first_seen=now,
                last_seen=now,
                approach=ApproachSamples(self._camera_view),
            )
            self._states[(tracker_id, vtype)] = state
        state.observe(now, score, hit)
        if hit and score > self._best.get(state.evidence_key, -1.0):
            self._best[state.evidence_key] = score
            result.offers.append(EvidenceOffer(state.evidence_key, box, class_name, score))
        if hit and vtype not in MOVING_TYPES:
            state.approach.observe(box, (frame.width, frame.height), position)
        if hit and vtype in self._nearest_view_for and area > self._nearest.get(state.evidence_key, 0.0):
            self._nearest[state.evidence_key] = area
            result.views.append(EvidenceOffer(state.evidence_key, box, class_name, score))

        violation = state.violation
        if violation is None:
            confirmed = state.confirmed_score(rule)
            if confirmed is None:
                return
            violation, lifecycle = self._confirm(state, mapping, rule, box, now, result)
            if violation is None:
                return  # waiting for dwell
            self._note(violation, state, frame, box, class_name, detector_index, confirmed, now, position)
            if lifecycle is Lifecycle.new and self._awaits_place(violation, rule, now):
                violation.held_since = now
            elif lifecycle is not None:
                result.events.append(self._emit(violation, lifecycle, now))
            return
        confirmed = state.confirmed_score(rule)
        self._note(
            violation, state, frame, box, class_name, detector_index,
            violation.score if confirmed is None else confirmed, now, position,
        )  # fmt: skip
        if violation.held_since is not None:
            if not self._awaits_place(violation, rule, now):
                result.events.append(self._emit(violation, Lifecycle.new, now))
            return
        if now - violation.last_emitted >= rule.update_interval_s and self._changed(violation, rule):
            result.events.append(self._emit(violation, Lifecycle.update, now))

    def _confirm(
        self,
        state: TrackState,
        mapping: ClassMapping,
        rule: RuleConfig,
        box: BoxT,
        now: float,
        result: RuleResult,
    ) -> tuple[Violation | None, Lifecycle | None]:
        """Attach a confirmed track to an earlier violation it continues, or start a new one."""
        earlier = self._continued(state.violation_type, box, now, rule)
        if earlier is not None:
            # The earlier violation already dwelled; no need to wait again.
            self._adopt(earlier, state, result)
            earlier.frames_seen += state.frames - 1  # _note counts the confirming frame
            reopened = earlier.ended_at is not None
            earlier.ended_at = None
            return earlier, (Lifecycle.update if reopened else None)
        if now - state.first_seen < rule.dwell_s:
            return None, None
        violation = Violation(
            track_id=self._new_id(),
            violation_type=state.violation_type,
            candidate=mapping.candidate,
            first_seen=state.first_seen,
            evidence_key=state.evidence_key,
            best_score=self._best.get(state.evidence_key, 0.0),
            frames_seen=state.frames - 1,  # _note counts the confirming frame
        )
        violation.state = state
        state.violation = violation
        return violation, Lifecycle.new

    def _continued(self, vtype: ViolationType, box: BoxT, now: float, rule: RuleConfig) -> Violation | None:
        """The best-overlapping violation of this type that is unseen right now or ended recently."""
        candidates = [
            s.violation
            for s in self._states.values()
            if s.violation is not None and s.violation_type == vtype and s.tracker_id not in self._present
        ]
        candidates += [v for v in self._ended if v.violation_type == vtype and v.ended_at is not None
                       and now - v.ended_at <= rule.cooldown_s]  # fmt: skip
        best, best_iou = None, CONTINUATION_IOU
        for v in candidates:
            overlap = iou(v.box, box)
            if overlap >= best_iou:
                best, best_iou = v, overlap
        return best

    def _adopt(self, violation: Violation, state: TrackState, result: RuleResult) -> None:
        old_state = violation.state
        if old_state is not None and old_state is not state:
            self._states.pop((old_state.tracker_id, old_state.violation_type), None)
            old_state.violation = None
        if violation in self._ended:
            self._ended.remove(violation)
        # Keep whichever evidence is better: the violation's earlier best frame or this track's.
        new_best = self._best.get(state.evidence_key, 0.0)
        if violation.ended_at is None and violation.best_score >= new_best:
            self._release(state.evidence_key, result)
            state.evidence_key = violation.evidence_key
        else:
            if violation.ended_at is None:
                self._release(violation.evidence_key, result)
            violation.evidence_key = state.evidence_key
            violation.best_score = new_best
        violation.first_seen = min(violation.first_seen, state.first_seen)
        violation.state = state
        state.violation = violation

    def _note(
        self,
        violation: Violation,
        state: TrackState,
        frame: Frame,
        box: BoxT,
        class_name: str,
        detector_index: int,
        score: float,
        now: float,
        position: Position | None,
    ) -> None:
        violation.box = box
        violation.frame_size = (frame.width, frame.height)
        violation.detector_class = class_name
        violation.model = self._model(detector_index)
        violation.score = score
        violation.last_seen = now
        violation.position = position
        violation.frames_seen += 1
        violation.best_score = max(violation.best_score, self._best.get(state.evidence_key, 0.0))

    def _awaits_place(self, violation: Violation, rule: RuleConfig, now: float) -> bool:
        """Hold the 'new' event: a moving camera, no place yet, and ``await_place_s`` not used up."""
        position = violation.position
        if rule.await_place_s <= 0 or position is None or position.source == "fixed":
            return False
        if violation.violation_type in MOVING_TYPES or self._place(violation) is not None:
            return False
        since = now if violation.held_since is None else violation.held_since
        return now - since < rule.await_place_s

    @staticmethod
    def _place(violation: Violation) -> ObjectPosition | None:
        # Moving types are never sampled (_observe_row), so they have no place.
        return None if violation.state is None else violation.state.approach.estimate()

    def _changed(self, violation: Violation, rule: RuleConfig) -> bool:
        better = violation.best_score > violation.reported_best + SCORE_EPSILON
        return better or rule.dwell_s > 0

    # -- time passes -----------------------------------------------------------------------------

    def _expire(self, now: float, seen: set[tuple[int, ViolationType]], result: RuleResult) -> None:
        for key, state in list(self._states.items()):
            if key in seen:
                continue
            if now - state.last_seen >= self._rules[state.violation_type].end_after_s:
                self._drop_state(state, now, result)
        self._ended = [
            v for v in self._ended
            if v.ended_at is not None and now - v.ended_at <= self._rules[v.violation_type].cooldown_s
        ]  # fmt: skip

    def _drop_state(self, state: TrackState, now: float, result: RuleResult) -> None:
        self._states.pop((state.tracker_id, state.violation_type), None)
        violation = state.violation
        self._release(state.evidence_key, result)
        if violation is None:
            return
        if violation.held_since is not None:  # gone before its place was known: report it now
            result.events.append(self._emit(violation, Lifecycle.new, violation.last_seen))
        result.events.append(self._emit(violation, Lifecycle.end, violation.last_seen))
        violation.ended_at = now
        violation.state = None
        state.violation = None
        self._ended.append(violation)

    # -- helpers ---------------------------------------------------------------------------------

    def _emit(self, violation: Violation, lifecycle: Lifecycle, when: float) -> TriggeredEvent:
        assert violation.model is not None
        width, height = violation.frame_size
        event = ViolationEvent(
            event_id=self._new_id(),
            device_id=self._device_id,
            camera_id=self._camera_id,
            track_id=violation.track_id,
            sequence=violation.next_sequence,
            lifecycle=lifecycle,
            violation_type=violation.violation_type,
            candidate=violation.candidate,
            detector_class=violation.detector_class,
            score=min(max(violation.score, 0.0), 1.0),
            box=violation.box,
            frame_width=width,
            frame_height=height,
            # An 'end' describes the last frame the violation was seen in (its box and position).
            observed_at=_utc(violation.last_seen),
            first_seen_at=_utc(min(violation.first_seen, violation.last_seen)),
            frames_seen=max(violation.frames_seen, 1),
            position=violation.position,
            object_position=self._place(violation),
            model=violation.model,
            config=self._config,
        )
        violation.held_since = None
        violation.next_sequence += 1
        violation.last_emitted = when
        violation.reported_best = violation.best_score
        return TriggeredEvent(event=event, evidence_key=violation.evidence_key)

    def _model(self, detector_index: int) -> ModelRef:
        if not 0 <= detector_index < len(self._models):
            raise ValueError(f"detection from detector {detector_index}, but only {len(self._models)} models")
        return self._models[detector_index]

    def _new_key(self) -> int:
        self._next_key += 1
        return self._next_key

    def _release(self, key: int, result: RuleResult) -> None:
        self._nearest.pop(key, None)
        if key in self._best:
            del self._best[key]
            result.released.append(key)


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)

"""The second stage of ``unsealed_truck``: once per track, ask the load classifier about the truck.

A detector finds trucks; whether a truck can shed its load is a question about its cargo area,
answered on the confirmed track's nearest view so far (its largest box: ``RuleResult.views``;
not its best-scoring frame, which for a far truck is often a far one; the evidence shows the same
view, so a dispatcher sees what the stage judged),
once (the first event of the track; its later events reuse the answer). Only an open load
raises the violation:

================================  ================================================================
classifier says (probability p)   what leaves the box
================================  ================================================================
``uncovered``, p >= min_score     the event, ``candidate: false``, ``attributes.load: uncovered``
``covered`` / ``empty`` /         nothing, for the whole track (a sealed, empty or closed truck,
``closed`` / ``not_a_truck``,     or no truck at all, is not a violation)
p >= min_score
any class, p < min_score          the event as a candidate, ``attributes.load: unsure`` and
                                  ``load_likeliest``: that class (a dispatcher decides; the
                                  review becomes a label)
no frame or the model failed      the event as a candidate, ``load: unsure``, ``load_score: 0``
the box's shorter side is under   nothing, for the whole track, counted as ``too_small``: too far
``min_side_px`` until the track   for anyone to judge its load
ends (not asked)
================================  ================================================================

A truck too small to judge when its track is confirmed is not decided yet: its first event is
held and the track's nearest view is looked at again on every frame. A truck coming closer to a
fixed camera, or a van catching up with it, is judged on the first frame it is near enough, and
the held event leaves then; one still too small when its track ends sends nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol
from uuid import UUID

import numpy as np
from numpy.typing import NDArray

from edge.config import TruckLoadConfig
from edge.rules import TriggeredEvent
from edge.truck_load.classifier import LoadVerdict
from streetwatch.events import EventAttributes, Lifecycle, ModelRef, TruckLoad, ViolationEvent
from streetwatch.messages import TruckLoadCounts

log = logging.getLogger(__name__)

BoxT = tuple[float, float, float, float]
#: Evidence key -> the frame kept for the stage (the track's nearest view) and the box in its pixels
#: (None: nothing kept).
ViewLookup = Callable[[int], "tuple[NDArray[np.uint8], BoxT] | None"]


class Classifier(Protocol):
    @property
    def label(self) -> str: ...

    @property
    def ref(self) -> ModelRef: ...

    def classify(self, image: NDArray[np.uint8], box: Sequence[float]) -> LoadVerdict: ...


@dataclass(frozen=True)
class LoadDecision:
    """What the stage decided for one truck (track): what its events carry, or silence."""

    attributes: EventAttributes | None  # None: the track is silenced
    #: The classifier's answer behind a silenced track (closed, covered, empty or not a truck).
    silenced_as: TruckLoad | None = None
    #: Silenced unasked: the truck was too small in its frame to judge (``min_side_px``).
    too_small: bool = False


@dataclass(frozen=True)
class LoadCounts:
    """Trucks (tracks) the stage decided since it started, by what left the box.

    ``silenced`` are trucks nothing was sent for: without this count, a box whose every truck is
    sealed looks the same to an operator as a box that sees no trucks (or whose detector broke).
    """

    raised: int = 0  # open load: sent as an unsealed_truck case
    unsure: int = 0  # sent as a candidate, load 'unsure'
    silenced: int = 0  # covered, empty, closed or not a truck: nothing sent
    too_small: int = 0  # too far to judge (under min_side_px): nothing sent, the classifier not asked

    @property
    def trucks(self) -> int:
        return self.raised + self.unsure + self.silenced + self.too_small


class LoadStage:
    """Filters and annotates the rule engine's events of one violation type (``config.violation_type``)."""

    def __init__(self, classifier: Classifier, config: TruckLoadConfig) -> None:
        self.classifier = classifier
        self.config = config
        self._decisions: dict[UUID, LoadDecision] = {}  # open tracks only: forgotten at their 'end'
        #: The first event of each track still too small to judge, sent once it is judged.
        self._held: dict[UUID, TriggeredEvent] = {}
        self.classified = 0
        self.silenced_events = 0
        self._counts = LoadCounts()

    @property
    def counts(self) -> LoadCounts:
        """Trucks decided so far (read by telemetry from another thread: one immutable value)."""
        return self._counts

    def telemetry(self) -> TruckLoadCounts:
        """:attr:`counts` as telemetry carries them (``TelemetryMessage.truck_load``)."""
        c = self._counts
        return TruckLoadCounts(raised=c.raised, unsure=c.unsure, silenced=c.silenced, too_small=c.too_small)

    @property
    def open_tracks(self) -> int:
        return len(self._decisions) + len(self._held)

    def review(self, events: Sequence[TriggeredEvent], view: ViewLookup) -> list[TriggeredEvent]:
        """The events to send: others untouched, this type's annotated, silenced tracks' dropped.

        Called once per frame (``events`` may be empty): a held truck whose nearest view has become
        big enough is judged on that frame, and its held first event leaves then.
        """
        out: list[TriggeredEvent] = []
        for track, held in list(self._held.items()):
            seen = view(held.evidence_key)
            if not self._too_small(seen):
                out.extend(self._annotated(held, self._settle(track, seen, held)))
        for triggered in events:
            event = triggered.event
            if event.violation_type is not self.config.violation_type:
                out.append(triggered)
                continue
            track = event.track_id
            decision = self._decisions.get(track)
            if decision is None:
                seen = view(triggered.evidence_key)
                if self._too_small(seen) and event.lifecycle is not Lifecycle.end:
                    # Look again at the next frames; the track's updates meanwhile say nothing new.
                    if self._held.setdefault(track, triggered) is not triggered:
                        self.silenced_events += 1
                    continue
                waiting = self._held.get(track)
                decision = self._settle(track, seen, triggered)
                if waiting is not None:  # the held first event leaves (or is silenced) before this one
                    out.extend(self._annotated(waiting, decision))
            if event.lifecycle is Lifecycle.end:
                del self._decisions[track]
            out.extend(self._annotated(triggered, decision))
        return out

    def _settle(
        self, track: UUID, seen: tuple[NDArray[np.uint8], BoxT] | None, current: TriggeredEvent
    ) -> LoadDecision:
        """Decide a track once, on ``seen``; its first event is the held one, if any, else ``current``."""
        decision = self._decide(seen)
        self._decisions[track] = decision
        self._count(decision)
        self._decided(self._held.pop(track, current).event, decision)
        return decision

    def _annotated(self, triggered: TriggeredEvent, decision: LoadDecision) -> list[TriggeredEvent]:
        """The event as the decision sends it: annotated, or nothing for a silenced track."""
        if decision.attributes is None:
            self.silenced_events += 1
            return []
        candidate = decision.attributes.load is not TruckLoad.uncovered
        event = triggered.event.model_copy(update={"attributes": decision.attributes, "candidate": candidate})
        return [TriggeredEvent(event=event, evidence_key=triggered.evidence_key)]

    def _too_small(self, seen: tuple[NDArray[np.uint8], BoxT] | None) -> bool:
        return seen is not None and _shorter_side(seen[1]) < self.config.min_side_px

    def _decided(self, event: ViolationEvent, decision: LoadDecision) -> None:
        """Called once per track with its first event, when it is decided (a hook for measuring)."""

    def _count(self, decision: LoadDecision) -> None:
        c = self._counts
        if decision.too_small:
            self._counts = replace(c, too_small=c.too_small + 1)
        elif decision.attributes is None:
            self._counts = replace(c, silenced=c.silenced + 1)
        elif decision.attributes.load is TruckLoad.uncovered:
            self._counts = replace(c, raised=c.raised + 1)
        else:
            self._counts = replace(c, unsure=c.unsure + 1)

    def _decide(self, seen: tuple[NDArray[np.uint8], BoxT] | None) -> LoadDecision:
        if seen is None:
            log.warning("truck load: no frame kept for a confirmed truck; it stays a candidate")
            return self._unsure(0.0)
        image, box = seen
        if self._too_small(seen):
            # Under this size the team's own labellers could rarely tell the load and never saw an
            # open one: a candidate here would ask a dispatcher what nobody can see.
            side = _shorter_side(box)
            log.info("truck load: box %.0f px on its shorter side, too far to judge; nothing raised", side)
            return LoadDecision(None, too_small=True)
        try:
            verdict = self.classifier.classify(image, box)
        except Exception as exc:  # a broken model must not lose the violation: review decides
            log.warning("truck load classifier failed (%s); the truck stays a candidate", exc)
            return self._unsure(0.0)
        self.classified += 1
        if verdict.score < self.config.min_score:
            return self._unsure(verdict.score, verdict.model, leaning=verdict.load)
        if verdict.load is TruckLoad.uncovered:
            return LoadDecision(self._attributes(TruckLoad.uncovered, verdict.score, verdict.model))
        log.info("truck load: %s (%.2f), nothing raised", verdict.load.value, verdict.score)
        return LoadDecision(None, silenced_as=verdict.load)

    def _unsure(self, score: float, model: str = "", leaning: TruckLoad | None = None) -> LoadDecision:
        """A candidate; ``leaning``: the answer the classifier was not sure enough of (None: none)."""
        attributes = self._attributes(TruckLoad.unsure, score, model)
        return LoadDecision(attributes.model_copy(update={"load_likeliest": leaning}))

    def _attributes(self, load: TruckLoad, score: float, model: str) -> EventAttributes:
        # The verdict's own model: a model update may swap the classifier between its answer and here.
        return EventAttributes(
            load=load,
            load_score=round(min(max(score, 0.0), 1.0), 4),
            load_model=model or self.classifier.label,
        )


def _shorter_side(box: BoxT) -> float:
    return min(box[2] - box[0], box[3] - box[1])

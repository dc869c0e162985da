"""Which case an event belongs to: a pure function of (event, candidates, rule, clock).

No database, no clock of its own: the caller (``server.ingest.process``) gives
the candidate cases it found through the geohash index and the current time,
and acts on the :class:`MatchDecision`. That keeps every rule below testable
on plain event sequences.

Rules, in order:

1. Only cases of the event's violation type are considered.
2. A case *joinable* by time is in an open state (or rejected: a spot the
   dispatcher dismissed keeps absorbing its repeats instead of reopening) and
   its latest event is within the type's join window of the event.
3. Among those, a case that already holds an event of the same device + track
   wins (a camera on a moving vehicle sees one object from several positions);
   then, for place-bound types, the nearest case within the radius; for moving
   types (trucks), a case opened by the same device + track. Where the rule keeps
   one object per case (signs), a case holding another track of the same device
   seen at the same time (``seen_together``) is another object, not a candidate by place.
4. Otherwise a case resolved or closed within the recurrence window, within the
   radius, is linked: the event opens a new case marked as its recurrence. A duplicate
   a reviewer merged into another case links that case instead.
5. Otherwise the event opens a new case.

Types whose rule sets ``second_pass_gap_s`` (street vending) hold a patrol's sightings
(:func:`needs_second_pass`): the case it opens waits in ``awaiting_recurrence``. Such a
sighting takes events within the radius until ``second_pass_expiry_s`` after its first
event (not only within the join window: the next pass may be days later), and the
decision says whether the event *confirms* it: one seen at least ``second_pass_gap_s``
after the first sighting (another pass), or one from a fixed camera (whose box already
asked for dwell).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

from server.cases.states import CaseState
from server.matching.geo import haversine_m
from server.settings import MatchingRule
from streetwatch.events import ViolationEvent, ViolationType

#: States in which a case still takes new events.
JOINABLE_STATES = frozenset(
    {
        CaseState.new,
        CaseState.confirmed,
        CaseState.dispatched,
        CaseState.possibly_resolved,
        CaseState.rejected,
        CaseState.awaiting_recurrence,
    }
)
#: States after which a new sighting is a recurrence.
FINISHED_STATES = frozenset({CaseState.resolved, CaseState.closed})


@dataclass(frozen=True, slots=True)
class CaseCandidate:
    """What matching needs to know about one existing case."""

    case_id: int
    violation_type: ViolationType
    state: CaseState
    lat: float | None
    lon: float | None
    last_event_at: datetime
    finished_at: datetime | None  # when it was resolved or closed; None while open
    device_id: str | None  # device and track of the event that opened it
    track_id: UUID | None
    same_track: bool = False  # holds an event of this event's device + track already
    #: holds an event of this event's device under another track seen at the same time (the caller
    #: reads it from stored events): another object in the same frames.
    seen_together: bool = False
    first_event_at: datetime | None = None  # the first sighting (read for awaiting_recurrence)
    merged_into: int | None = None  # set on a duplicate a reviewer merged: the case that stands for it


class MatchAction(Enum):
    join = "join"
    recurrence = "recurrence"
    new = "new"


@dataclass(frozen=True, slots=True)
class MatchDecision:
    """What to do with an event: join ``case_id``, link a recurrence of it, or open a new case."""

    action: MatchAction
    case_id: int | None = None
    distance_m: float | None = None
    reason: str = ""
    #: new / recurrence: the case opened waits for a second pass (``awaiting_recurrence``).
    awaits_second_pass: bool = False
    #: join: the event is the second pass an awaiting sighting waited for; it becomes ``new``.
    confirms: bool = False


def needs_second_pass(event: ViolationEvent, rule: MatchingRule) -> bool:
    """Whether a case ``event`` opens must wait for a second pass.

    Only when the rule asks for one, and only for a patrol: the event has a position from GNSS
    (``nmea`` or ``gpx``; a box on a vehicle). A fixed camera (position ``fixed``, from its
    configuration) confirms by dwell on the box; an event without a position cannot be placed
    for a second pass, so it opens its case at once, as before.
    """
    return (
        rule.second_pass_gap_s > 0
        and not rule.moving
        and event.position is not None
        and event.position.source != "fixed"
    )


def match_event(
    event: ViolationEvent,
    candidates: Iterable[CaseCandidate],
    rule: MatchingRule,
    now: datetime,
) -> MatchDecision:
    """Decide which case ``event`` belongs to; see the module docstring for the rules."""
    # A device clock running ahead must not stretch windows into the future.
    at = min(event.observed_at, now)
    join_window = timedelta(seconds=rule.join_window_s)
    recurrence_window = timedelta(seconds=rule.recurrence_window_s)

    joinable: list[tuple[tuple[int, int, float, float, int], CaseCandidate, float | None]] = []
    recurrences: list[tuple[tuple[float, float, int], CaseCandidate, float | None]] = []
    for case in candidates:
        if case.violation_type != event.violation_type:
            continue
        distance = _distance(event, case)
        if case.state in JOINABLE_STATES and _in_join_time(case, at, join_window, rule):
            if case.same_track or (_near(event, case, distance, rule) and not _seen_together(case, rule)):
                key = (
                    0 if case.same_track else 1,
                    1 if case.state is CaseState.awaiting_recurrence else 0,  # a case dispatchers see first
                    distance if distance is not None else 0.0,
                    -case.last_event_at.timestamp(),
                    case.case_id,
                )
                joinable.append((key, case, distance))
        elif (
            case.state in FINISHED_STATES
            and case.finished_at is not None
            and recurrence_window > timedelta(0)
            and timedelta(0) <= at - case.finished_at <= recurrence_window
            and _near(event, case, distance, rule)
        ):
            key2 = (
                distance if distance is not None else 0.0,
                -case.finished_at.timestamp(),
                case.case_id,
            )
            recurrences.append((key2, case, distance))

    if joinable:
        _, best, distance = min(joinable, key=lambda item: item[0])
        why = "same track" if best.same_track else _where(distance)
        confirms = best.state is CaseState.awaiting_recurrence and _second_pass(event, best, at, rule)
        return MatchDecision(
            MatchAction.join, best.case_id, distance, f"joins case {best.case_id}: {why}", confirms=confirms
        )
    held = needs_second_pass(event, rule)
    if recurrences:
        _, best, distance = min(recurrences, key=lambda item: item[0])
        # A merged duplicate was closed by the merge, not by the street: the violation it saw lives
        # on in the case it was merged into, so the recurrence names that one.
        if best.merged_into is not None:
            return MatchDecision(
                MatchAction.recurrence,
                best.merged_into,
                distance,
                f"recurrence of case {best.merged_into} through its duplicate {best.case_id} "
                f"(merged {best.finished_at:%Y-%m-%d %H:%M}): " + _where(distance),
                awaits_second_pass=held,
            )
        return MatchDecision(
            MatchAction.recurrence,
            best.case_id,
            distance,
            f"recurrence of case {best.case_id} ({best.state} {best.finished_at:%Y-%m-%d %H:%M}): "
            + _where(distance),
            awaits_second_pass=held,
        )
    return MatchDecision(
        MatchAction.new,
        reason="no open case of this type nearby in the time window",
        awaits_second_pass=held,
    )


def _in_join_time(case: CaseCandidate, at: datetime, join_window: timedelta, rule: MatchingRule) -> bool:
    if abs(at - case.last_event_at) <= join_window:
        return True
    # A sighting awaiting a second pass waits for it until it expires, however long the join window
    # (and takes a pass from before it that a box delivers late, after a dead zone).
    return (
        case.state is CaseState.awaiting_recurrence
        and case.first_event_at is not None
        and abs(at - case.first_event_at) <= timedelta(seconds=rule.second_pass_expiry_s)
    )


def _second_pass(event: ViolationEvent, case: CaseCandidate, at: datetime, rule: MatchingRule) -> bool:
    """Whether ``event`` confirms the awaiting sighting ``case``: a fixed camera, or a later pass.

    A later pass is at least ``second_pass_gap_s`` after the sighting's first event, or before
    its last one (a pass delivered late). An event of a track the case already holds is the same
    pass however long the track lasts (a patrol parked beside the stall), and one without a
    position joined only by its track.
    """
    if case.same_track or event.position is None:
        return False
    if event.position.source == "fixed":
        return True
    gap = timedelta(seconds=rule.second_pass_gap_s)
    first = case.first_event_at
    return (first is not None and at - first >= gap) or case.last_event_at - at >= gap


def _distance(event: ViolationEvent, case: CaseCandidate) -> float | None:
    place = event.place  # the object's estimated position when the box sent one
    if place is None or case.lat is None or case.lon is None:
        return None
    return haversine_m(place.lat, place.lon, case.lat, case.lon)


def _near(event: ViolationEvent, case: CaseCandidate, distance: float | None, rule: MatchingRule) -> bool:
    if rule.moving:
        return case.device_id == event.device_id and case.track_id == event.track_id
    return distance is not None and distance <= rule.radius_m


def _seen_together(case: CaseCandidate, rule: MatchingRule) -> bool:
    """Whether the rule keeps one object per case and ``case`` holds another object the event's box
    saw at the same time: two signs of one shop front, not one sign seen twice. A later pass of
    the same box, or another box, still joins by place."""
    return rule.one_object_per_case and case.seen_together


def _where(distance: float | None) -> str:
    return "same device and track" if distance is None else f"{distance:.1f} m away"

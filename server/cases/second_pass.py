"""Sightings that wait for a second pass before a dispatcher sees them (street vending from patrols).

A patrol car passes a stall in seconds, and an umbrella with a person beside goods may be a
shop's café table or someone resting. A stall that is there again on another pass is real.
So a type whose matching rule sets ``second_pass_gap_s`` (street vending by default) keeps a
patrol's first sighting as a case in ``awaiting_recurrence``: stored with its events, out of the
queue, its counts, the live stream, Open311 and the statistics, listed only when asked for
(``GET /api/v1/cases?state=awaiting_recurrence``).

* The matcher (:func:`server.matching.matcher.needs_second_pass`) decides which events wait:
  a position from GNSS (``nmea`` / ``gpx``) is a box on a vehicle; a fixed camera (position
  ``fixed``) already asked for dwell on the box and opens its case at once.
* :func:`confirm_sighting`: an event within the matching radius at least ``second_pass_gap_s``
  after the first sighting (a separate pass, same box or another, not the same track), or one
  from a fixed camera, makes the case ``new``. Its SLA runs from that event and ``opened_at``
  becomes the moment dispatchers got it; ``first_event_at`` keeps the first sighting.
* :func:`expire_sightings`: a sighting no pass confirmed within ``second_pass_expiry_s`` of its
  first sighting becomes ``expired`` (the ingest worker runs it every few minutes; matching
  already stops joining it at that age, so a late sweep changes nothing but the label).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.service import SYSTEM_INGEST, transition
from server.cases.workflow import CaseError
from server.db.models import Case, CaseState
from server.settings import MatchingRule, ServerSettings
from streetwatch.events import ViolationEvent

log = logging.getLogger(__name__)

SYSTEM_SECOND_PASS = "system:second-pass"
#: Sightings expired per type and sweep; the next sweep takes the rest.
EXPIRE_BATCH = 500


def confirm_sighting(
    session: Session,
    case_id: int,
    event: ViolationEvent,
    first_seen: datetime,
    rule: MatchingRule,
    now: datetime,
) -> Case | None:
    """Make the awaiting sighting ``case_id`` a ``new`` case: ``event`` is its second pass.

    None when the case is no longer awaiting (a supervisor confirmed or rejected it meanwhile,
    or it expired): the event stays on it, nothing else changes.
    """
    seen_at = min(event.observed_at, now)
    if event.position is not None and event.position.source == "fixed":
        how = f"seen by the fixed camera {event.device_id} (event {event.event_id})"
    else:
        gap_min = (seen_at - first_seen).total_seconds() / 60
        # Negative: this pass came first but was delivered late (a box back from a dead zone).
        when = f"{gap_min:.0f} min after" if gap_min >= 0 else f"{-gap_min:.0f} min before"
        how = f"seen again by {event.device_id} (event {event.event_id}) {when} the waiting sighting"
    try:
        case = transition(
            session,
            case_id,
            CaseState.new,
            SYSTEM_INGEST,
            how,
            expected=CaseState.awaiting_recurrence,
            now=now,
        )
    except CaseError as exc:
        log.info("second pass: case %s not confirmed by event %s: %s", case_id, event.event_id, exc)
        return None
    case.opened_at = now
    case.sla_due_at = seen_at + timedelta(hours=rule.sla_hours)
    return case


def expire_sightings(session: Session, settings: ServerSettings, now: datetime) -> list[int]:
    """Expire the sightings no second pass confirmed in time; return their case ids.

    Every type is swept with its rule's ``second_pass_expiry_s``, also one whose rule no longer
    asks for a second pass, so that no sighting waits forever after a configuration change.
    """
    expired: list[int] = []
    for violation_type, rule in sorted(settings.matching.items()):
        cutoff = now - timedelta(seconds=rule.second_pass_expiry_s)
        ids = session.scalars(
            select(Case.id)
            .where(
                Case.state == CaseState.awaiting_recurrence,
                Case.violation_type == violation_type.value,
                Case.first_event_at < cutoff,
            )
            .order_by(Case.id)
            .limit(EXPIRE_BATCH)
        ).all()
        days = rule.second_pass_expiry_s / 86400
        reason = f"not seen again on a second pass within {days:g} days of the first sighting"
        for case_id in ids:
            try:
                transition(
                    session,
                    case_id,
                    CaseState.expired,
                    SYSTEM_SECOND_PASS,
                    reason,
                    expected=CaseState.awaiting_recurrence,
                    now=now,
                )
            except CaseError:
                continue  # decided or confirmed since it was selected
            expired.append(case_id)
    return expired

"""Deciding signboard sightings that waited for their crop (``pending``).

    decided = settle_pending(session, settings, now)   # the ingest worker calls it periodically

A track's pending sightings are decided together, by its newest event: as soon as its crop is
in the evidence store, or once ``signs.pending_s`` has passed without it (then ``unverified``
near a registered sign, ``new`` elsewhere; see :mod:`server.signs.register`). A decision that
opens a case goes through the same case matching as ingest, under the same advisory locks
(its cells and track), so it never makes a second case for a spot another worker is filling.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db.models import CaseState, Event, Sign, SignSighting
from server.ingest.process import IngestBatch
from server.ingest.scope import search_scope
from server.matching.matcher import MatchAction, match_event
from server.settings import ServerSettings
from server.signs.register import SignOutcome
from streetwatch.events import ViolationEvent

log = logging.getLogger(__name__)


def settle_pending(session: Session, settings: ServerSettings, now: datetime) -> int:
    """Decide the pending tracks that can be decided now; return how many sightings were decided."""
    pending = session.execute(
        select(SignSighting.device_id, SignSighting.track_id)
        .where(SignSighting.outcome == SignOutcome.pending)
        .group_by(SignSighting.device_id, SignSighting.track_id)
    ).all()
    decided = 0
    for device_id, track_id in pending:
        decided += _settle_track(session, settings, now, device_id, track_id)
    return decided


def _settle_track(
    session: Session, settings: ServerSettings, now: datetime, device_id: str, track_id: uuid.UUID
) -> int:
    rows = session.execute(
        select(SignSighting, Event.raw, Event.received_at)
        .join(Event, Event.event_id == SignSighting.event_id)
        .where(
            SignSighting.device_id == device_id,
            SignSighting.track_id == track_id,
            SignSighting.outcome == SignOutcome.pending,
        )
        .order_by(Event.observed_at)
    ).all()
    if not rows:
        return 0
    try:
        event = ViolationEvent.model_validate(rows[-1].raw)
    except ValidationError as exc:  # stored by an older build; decide as new rather than wait forever
        log.warning("signs: pending event %s no longer reads: %s", rows[-1][0].event_id, exc)
        return 0
    overdue = now - rows[0].received_at >= timedelta(seconds=settings.signs.pending_s)
    batch = IngestBatch(session, settings, now)
    batch.lock(events=[event])
    rule = settings.rule(event.violation_type)
    scope = search_scope(event, rule)
    if batch.signs.crop_fingerprint(event) is None and not overdue:
        return 0  # the crop may still come
    decision, fp = batch.signs.decide(event, scope, rule, crop_overdue=True)
    sightings = [row[0] for row in rows]
    event_ids = [s.event_id for s in sightings]
    case_id = None
    if decision.outcome.opens_case:
        at = min(event.observed_at, now)
        batch.cases.preload(
            session,
            [scope],
            at - timedelta(seconds=rule.join_window_s),
            at - timedelta(seconds=rule.recurrence_window_s),
        )
        candidates = batch.cases.candidates(scope)
        if decision.sign_id is not None:  # about a registered sign: rejected cases stay out
            candidates = [c for c in candidates if c.state is not CaseState.rejected]
        match = match_event(event, candidates, rule, now)
        if match.action is MatchAction.join:
            assert match.case_id is not None
            record = batch.cases.records[match.case_id]
        else:
            record = batch.cases.open(event, rule, now, recurrence_of=match.case_id)
            if record.new_values is not None:
                record.new_values["title"] = decision.case_title(event)
        for _ in sightings:
            record.count_event(event, now)
        batch.cases.write(session, now)
        case_id = record.id
        session.execute(update(Event).where(Event.event_id.in_(event_ids)).values(case_id=case_id))
    elif decision.outcome is SignOutcome.attached and decision.sign_id is not None:
        sign = session.get(Sign, decision.sign_id)
        if sign is not None:
            sign.last_seen_at = now
            sign.sighting_count += len(sightings)
            if decision.adopt and fp is not None and not sign.fingerprint:
                sign.fingerprint = {"views": [fp]}
    for sighting in sightings:
        sighting.outcome = decision.outcome
        sighting.sign_id = decision.sign_id
        sighting.case_id = case_id
        sighting.distance_m = decision.distance_m
        sighting.similarity = decision.similarity
        sighting.zone_name, sighting.zone_reason = decision.zone_name, decision.zone_reason
    session.flush()
    return len(sightings)

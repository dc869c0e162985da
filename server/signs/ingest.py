"""The sign register inside one ingest batch: look up, fingerprint, decide, record.

:class:`server.ingest.process.IngestBatch` asks :meth:`SignCheck.decide` about every
signboard event before case matching, and :meth:`SignCheck.write` stores the sightings once
the batch's events and cases have ids. The register is read only in the event's search-scope
cells (what the batch's advisory locks cover) and by its own device + track.

**Crops that arrive after their event.** The box commits an event's images before the event
and publishes in commit order, so the crop is nearly always in the evidence store (written when
it was decoded, before its batch) when the event is matched. When it is not, the sighting is
``pending``: the event is stored without a case. The next event of the same track that brings
its crop decides for the whole track (the pending events follow that decision: the sign they
attach to, or the case they join). A track whose crop never comes is decided by
:func:`server.signs.service.settle_pending` after ``signs.pending_s``: ``unverified`` (a case
to look at) near a registered sign, ``new`` elsewhere.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db.models import Case, Event, Sign, SignSighting
from server.evidence_store import EvidenceStore
from server.ingest.case_cache import CaseRecord
from server.ingest.scope import SearchScope
from server.settings import MatchingRule, SignSettings
from server.signs.fingerprint import FingerprintError, fingerprint
from server.signs.register import RegisteredSign, SignDecision, SignOutcome, decide_sign
from server.signs.service import views
from streetwatch.events import ViolationEvent

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Sighting:
    event: ViolationEvent
    decision: SignDecision
    record: CaseRecord | None
    fingerprint: dict[str, Any] | None


class SignCheck:
    """Decisions of the sign register for one batch (see the module docstring)."""

    def __init__(self, session: Session, settings: SignSettings, store: EvidenceStore, now: datetime) -> None:
        self.session = session
        self.settings = settings
        self.store = store
        self.now = now
        self._sightings: list[_Sighting] = []
        self._tracks: dict[tuple[str, uuid.UUID], SignDecision] = {}

    def decide(
        self, event: ViolationEvent, scope: SearchScope, rule: MatchingRule, *, crop_overdue: bool = False
    ) -> tuple[SignDecision, dict[str, Any] | None]:
        """What the register says of ``event``, and its crop's fingerprint (None: no crop yet)."""
        prior = self._track_decision(event.device_id, event.track_id)
        if prior is not None and prior.outcome is not SignOutcome.pending:
            return prior, None  # one tracked sign, one answer
        nearby = self._signs_in(scope.cells)
        # Without a registered sign in the cells the answer is "new" whatever the crop shows:
        # no image is read for the common case of a street nobody has registered yet.
        fp = self.crop_fingerprint(event) if nearby else None
        decision = decide_sign(
            event, fp, nearby, self.settings, radius_cap_m=rule.radius_m, crop_overdue=crop_overdue
        )
        return decision, fp

    def record(
        self,
        event: ViolationEvent,
        decision: SignDecision,
        record: CaseRecord | None,
        fp: dict[str, Any] | None,
    ) -> None:
        self._sightings.append(_Sighting(event, decision, record, fp))
        self._tracks[(event.device_id, event.track_id)] = decision

    def crop_fingerprint(self, event: ViolationEvent) -> dict[str, Any] | None:
        """The fingerprint of the event's crop when the store holds it; None otherwise."""
        if event.evidence is None:
            return None
        try:
            path = self.store.path_of(self.store.relative_path(event.evidence.crop_sha256, ".jpg"))
            data = path.read_bytes()
        except (OSError, ValueError):
            return None
        try:
            return fingerprint(data)
        except FingerprintError as exc:
            log.warning("signs: crop %s of event %s: %s", event.evidence.crop_sha256, event.event_id, exc)
            return None

    def write(self) -> None:
        """Insert this batch's sightings (after the events and cases: they need their ids)."""
        if not self._sightings:
            return
        for sighting in self._sightings:
            event, decision = sighting.event, sighting.decision
            case_id = sighting.record.id if sighting.record is not None else None
            self.session.add(
                SignSighting(
                    event_id=event.event_id,
                    device_id=event.device_id,
                    track_id=event.track_id,
                    sign_id=decision.sign_id,
                    case_id=case_id,
                    outcome=decision.outcome.value,
                    distance_m=decision.distance_m,
                    similarity=decision.similarity,
                    at=self.now,
                )
            )
            if decision.outcome is not SignOutcome.pending:
                self._settle_track(event, decision, case_id)
            if decision.outcome is SignOutcome.attached and decision.sign_id is not None:
                sign = self.session.get(Sign, decision.sign_id)
                if sign is not None:
                    sign.last_seen_at = self.now
                    sign.sighting_count += 1
                    if decision.adopt and not views(sign) and sighting.fingerprint is not None:
                        sign.fingerprint = {"views": [sighting.fingerprint]}
                        sign.crop_sha256 = event.evidence.crop_sha256 if event.evidence else None
        self._sightings = []
        self.session.flush()

    def _settle_track(self, event: ViolationEvent, decision: SignDecision, case_id: int | None) -> None:
        """Earlier pending sightings of the track follow its decision (their events join its case)."""
        pending = list(
            self.session.scalars(
                select(SignSighting).where(
                    SignSighting.device_id == event.device_id,
                    SignSighting.track_id == event.track_id,
                    SignSighting.outcome == SignOutcome.pending.value,
                )
            )
        )
        if not pending:
            return
        for sighting in pending:
            sighting.outcome = decision.outcome.value
            sighting.sign_id = decision.sign_id
            sighting.case_id = case_id
        if case_id is not None:
            ids = [s.event_id for s in pending]
            self.session.execute(update(Event).where(Event.event_id.in_(ids)).values(case_id=case_id))
            self.session.execute(
                update(Case).where(Case.id == case_id).values(event_count=Case.event_count + len(ids))
            )

    def _track_decision(self, device_id: str, track_id: uuid.UUID) -> SignDecision | None:
        key = (device_id, track_id)
        if key in self._tracks:
            return self._tracks[key]
        row = self.session.execute(
            select(SignSighting.outcome, SignSighting.sign_id)
            .where(SignSighting.device_id == device_id, SignSighting.track_id == track_id)
            .order_by(SignSighting.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None
        return SignDecision(SignOutcome(row.outcome), row.sign_id, reason="the same track's earlier sighting")

    def _signs_in(self, cells: frozenset[str]) -> list[RegisteredSign]:
        if not cells:
            return []
        return [
            RegisteredSign(s.id, s.lat, s.lon, tuple(views(s)), s.valid_until)
            for s in self.session.scalars(select(Sign).where(Sign.cell.in_(sorted(cells))))
        ]

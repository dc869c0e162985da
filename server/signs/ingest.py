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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from server.db.models import Case, Event, Sign, SignSighting
from server.evidence_store import EvidenceStore
from server.ingest.case_cache import CaseRecord, chunks
from server.ingest.scope import SearchScope
from server.settings import MatchingRule, SignSettings
from server.signs.fingerprint import FingerprintError, fingerprint
from server.signs.register import RegisteredSign, SignDecision, SignOutcome, decide_sign, with_zone
from server.signs.service import views
from server.signs.zones import ZoneLabel
from streetwatch.events import ViolationEvent, ViolationType

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Sighting:
    event: ViolationEvent
    decision: SignDecision
    record: CaseRecord | None
    fingerprint: dict[str, Any] | None


class SignCheck:
    """Decisions of the sign register for one batch (see the module docstring).

    :meth:`preload` fetches, in two queries for a whole batch, the register entries in the
    signboard events' cells and the latest sighting of each of their tracks; :meth:`decide`
    then answers from memory, and :meth:`write` inserts the sightings in one statement.
    """

    def __init__(self, session: Session, settings: SignSettings, store: EvidenceStore, now: datetime) -> None:
        self.session = session
        self.settings = settings
        self.store = store
        self.now = now
        self._sightings: list[_Sighting] = []
        self._tracks: dict[tuple[str, uuid.UUID], SignDecision] = {}  # decided in this batch
        self._prior: dict[tuple[str, uuid.UUID], SignDecision] = {}  # latest stored sighting per track
        self._tracks_loaded: set[tuple[str, uuid.UUID]] = set()
        self._signs_by_cell: dict[str, list[RegisteredSign]] = {}
        self._cells_loaded: set[str] = set()
        self._settle: set[tuple[str, uuid.UUID]] = set()  # tracks with pending sightings to follow

    def preload(self, scopes: Iterable[SearchScope]) -> None:
        """Fetch the entries in these scopes' cells and their tracks' latest sightings."""
        cells: set[str] = set()
        tracks: set[tuple[str, uuid.UUID]] = set()
        for scope in scopes:
            if scope.violation_type != ViolationType.illegal_signboard.value:
                continue
            cells |= scope.cells
            tracks.add((scope.device_id, scope.track_id))
        fresh_cells = sorted(cells - self._cells_loaded)
        for chunk in chunks(fresh_cells):
            in_force = select(Sign).where(Sign.cell.in_(chunk), Sign.superseded_by.is_(None))
            for sign in self.session.scalars(in_force):
                self._signs_by_cell.setdefault(sign.cell, []).append(
                    RegisteredSign(sign.id, sign.lat, sign.lon, tuple(views(sign)), sign.valid_until)
                )
        self._cells_loaded.update(fresh_cells)
        fresh_tracks = tracks - self._tracks_loaded
        by_id: dict[uuid.UUID, set[str]] = {}
        for device_id, track_id in fresh_tracks:
            by_id.setdefault(track_id, set()).add(device_id)
        for chunk in chunks(sorted(by_id, key=str)):
            rows = self.session.execute(
                select(
                    SignSighting.device_id,
                    SignSighting.track_id,
                    SignSighting.outcome,
                    SignSighting.sign_id,
                    SignSighting.zone_name,
                    SignSighting.zone_reason,
                )
                .where(SignSighting.track_id.in_(chunk))
                .order_by(SignSighting.id)
            )
            for row in rows:
                if row.device_id in by_id.get(row.track_id, ()):
                    zone = ZoneLabel(row.zone_name, row.zone_reason or "") if row.zone_name else None
                    self._prior[(row.device_id, row.track_id)] = SignDecision(
                        row.outcome, row.sign_id, reason="the same track's earlier sighting", zone=zone
                    )
        self._tracks_loaded |= fresh_tracks

    def decide(
        self, event: ViolationEvent, scope: SearchScope, rule: MatchingRule, *, crop_overdue: bool = False
    ) -> tuple[SignDecision, dict[str, Any] | None]:
        """What the register says of ``event``, and its crop's fingerprint (None: not read, or no crop)."""
        self.preload([scope])
        key = (event.device_id, event.track_id)
        prior = self._tracks.get(key) or self._prior.get(key)
        if prior is not None and prior.outcome is not SignOutcome.pending:
            return with_zone(prior, event, self.settings), None  # one tracked sign, one answer
        nearby = [sign for cell in sorted(scope.cells) for sign in self._signs_by_cell.get(cell, [])]
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
        key = (event.device_id, event.track_id)
        earlier = self._tracks.get(key) or self._prior.get(key)
        held = earlier is not None and earlier.outcome is SignOutcome.pending
        if held and decision.outcome is not SignOutcome.pending:
            self._settle.add(key)  # its held sightings follow this decision (in write)
        self._sightings.append(_Sighting(event, decision, record, fp))
        self._tracks[key] = decision

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
        rows = []
        seen: dict[int, int] = {}
        adopted: set[int] = set()
        for sighting in self._sightings:
            event, decision = sighting.event, sighting.decision
            rows.append(
                {
                    "event_id": event.event_id,
                    "device_id": event.device_id,
                    "track_id": event.track_id,
                    "sign_id": decision.sign_id,
                    "case_id": sighting.record.id if sighting.record is not None else None,
                    "outcome": decision.outcome,
                    "distance_m": decision.distance_m,
                    "similarity": decision.similarity,
                    "zone_name": decision.zone_name,
                    "zone_reason": decision.zone_reason,
                    "at": self.now,
                }
            )
            if decision.outcome is SignOutcome.attached and decision.sign_id is not None:
                seen[decision.sign_id] = seen.get(decision.sign_id, 0) + 1
                if decision.adopt and sighting.fingerprint is not None and decision.sign_id not in adopted:
                    adopted.add(decision.sign_id)
                    self._adopt(decision.sign_id, sighting)
        self.session.execute(insert(SignSighting), rows)
        for sign_id in sorted(seen):  # one order, so two workers never deadlock on these rows
            self.session.execute(
                update(Sign)
                .where(Sign.id == sign_id)
                .values(last_seen_at=self.now, sighting_count=Sign.sighting_count + seen[sign_id])
            )
        for key in sorted(self._settle, key=str):
            decided = [s for s in self._sightings if (s.event.device_id, s.event.track_id) == key]
            last = decided[-1]
            self._settle_track(key, last.decision, last.record.id if last.record is not None else None)
        self._sightings = []
        self._settle = set()

    def _adopt(self, sign_id: int, sighting: _Sighting) -> None:
        """A permit imported without a photo takes this sighting's look (once)."""
        event = sighting.event
        self.session.execute(
            update(Sign)
            .where(Sign.id == sign_id)  # decide_sign saw it without views (JSON null is no SQL NULL)
            .values(
                fingerprint={"views": [sighting.fingerprint]},
                crop_sha256=event.evidence.crop_sha256 if event.evidence else None,
            )
        )
        for signs in self._signs_by_cell.values():  # later events of this batch see the look too
            for i, sign in enumerate(signs):
                if sign.sign_id == sign_id and not sign.views and sighting.fingerprint is not None:
                    signs[i] = RegisteredSign(
                        sign.sign_id, sign.lat, sign.lon, (sighting.fingerprint,), sign.valid_until
                    )

    def _settle_track(self, key: tuple[str, uuid.UUID], decision: SignDecision, case_id: int | None) -> None:
        """Held (pending) sightings of the track follow its decision; their events join its case."""
        device_id, track_id = key
        pending = list(
            self.session.scalars(
                select(SignSighting).where(
                    SignSighting.device_id == device_id,
                    SignSighting.track_id == track_id,
                    SignSighting.outcome == SignOutcome.pending,
                )
            )
        )
        if not pending:
            return
        for sighting in pending:
            sighting.outcome = decision.outcome
            sighting.sign_id = decision.sign_id
            sighting.case_id = case_id
            sighting.zone_name, sighting.zone_reason = decision.zone_name, decision.zone_reason
        if case_id is not None:
            ids = [s.event_id for s in pending]
            self.session.execute(update(Event).where(Event.event_id.in_(ids)).values(case_id=case_id))
            self.session.execute(
                update(Case).where(Case.id == case_id).values(event_count=Case.event_count + len(ids))
            )
        if decision.outcome is SignOutcome.attached and decision.sign_id is not None:
            self.session.execute(
                update(Sign)
                .where(Sign.id == decision.sign_id)
                .values(sighting_count=Sign.sighting_count + len(pending))
            )
        self.session.flush()

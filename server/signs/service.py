"""Register entries: made from a case marked permitted, imported, added and removed by hand.

    sign = register_from_case(session, case_id, actor, store, now)   # reject ... permitted
    sign = add_sign(session, SignIn(lat=.., lon=.., permit_id=..), actor, now, crops=[jpeg])

Nothing here commits. Every entry gets the geohash cell of its place (the cells case matching
reads, so ingest finds it under the locks it already takes) and, when crops are given or the
case has some, their fingerprints (:mod:`server.signs.fingerprint`), up to :data:`MAX_VIEWS`
views: a sighting is compared with the best of them, so one sign photographed from two places
on the pass it was permitted is recognised from either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from server.db.models import Case, Event, Evidence, Sign, SignSighting
from server.evidence_store import EvidenceStore, sha256_hex
from server.matching.geohash import encode
from server.settings import CELL_PRECISION
from server.signs.fingerprint import FingerprintError, fingerprint
from server.signs.outcome import SignOutcome
from server.signs.since import entries_since
from streetwatch.errors import StreetWatchError
from streetwatch.events import ViolationType


class SignError(StreetWatchError):
    """A register entry that cannot be made (no place, an unreadable photo, an unknown id)."""


@dataclass(frozen=True, slots=True)
class SignIn:
    """A register entry to add (by hand or from an import)."""

    lat: float
    lon: float
    permit_id: str | None = None
    valid_until: datetime | None = None
    description: str = ""
    source: str = "api"

    def check(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise SignError(f"position ({self.lat}, {self.lon}) is not a WGS 84 latitude/longitude")
        if self.permit_id is not None and len(self.permit_id) > 64:
            raise SignError(f"permit id {self.permit_id[:20]!r}... is longer than 64 characters")


#: Views of one sign kept in its fingerprint: a permitted case's best crops.
MAX_VIEWS = 5


def views(sign: Sign) -> list[dict[str, Any]]:
    """The fingerprints of a register entry's known views (``signs.fingerprint = {"views": [...]}``)."""
    if not sign.fingerprint:
        return []
    return list(sign.fingerprint.get("views", []))


def add_sign(
    session: Session,
    sign: SignIn,
    actor: str,
    now: datetime,
    crops: Sequence[bytes] = (),
    case_id: int | None = None,
) -> Sign:
    """Add one register entry; ``crops`` (JPEGs of the sign, best first) give it its fingerprint."""
    sign.check()
    fps = []
    for crop in crops[:MAX_VIEWS]:
        try:
            fps.append(fingerprint(crop))
        except FingerprintError as exc:
            raise SignError(str(exc)) from exc
    row = Sign(
        lat=sign.lat,
        lon=sign.lon,
        cell=encode(sign.lat, sign.lon, CELL_PRECISION),
        fingerprint={"views": fps} if fps else None,
        crop_sha256=sha256_hex(crops[0]) if crops else None,
        permit_id=sign.permit_id,
        valid_until=sign.valid_until,
        source=sign.source,
        description=sign.description,
        case_id=case_id,
        created_by=actor[:64],
        created_at=now,
        sighting_count=0,
    )
    session.add(row)
    session.flush()
    return row


def register_from_case(
    session: Session,
    case_id: int,
    actor: str,
    store: EvidenceStore | None,
    now: datetime,
    *,
    since_reach_m: float = 0.0,
) -> Sign | None:
    """Register the sign a signboard case shows (a reviewer marked it permitted).

    Its crops come from the case's best events with a crop the store holds (highest score, then
    newest). Its place is the most accurate the box estimated for the sign (``object_position``: a
    track's later estimates have seen more of the approach), else the best event's. Registering
    one case twice returns the first entry. None for a case that is not a signboard or has no
    position.

    The new entry replaces the one the register compared the case with (a changed or expired
    sign), or else the nearest entry registered within ``since_reach_m`` after the case opened (a
    permit imported since, :func:`server.signs.since.entries_since`): that one's permit and last
    day carry over, so the sign is one entry with the case's look and the permit's validity, and
    it lapses when the permit does.
    """
    case = session.get(Case, case_id)
    if case is None or case.violation_type != ViolationType.illegal_signboard.value:
        return None
    existing = session.scalars(select(Sign).where(Sign.case_id == case_id)).first()
    if existing is not None:
        return existing
    events = session.scalars(
        select(Event)
        .where(Event.case_id == case_id, Event.lat.is_not(None))
        .order_by(Event.score.desc(), Event.observed_at.desc())
    ).all()
    crops: list[bytes] = []
    chosen = None
    for event in events:
        if event.crop_sha256 is None or store is None or len(crops) >= MAX_VIEWS:
            continue
        try:
            crop = store.path_of(store.relative_path(event.crop_sha256, ".jpg")).read_bytes()
        except (OSError, ValueError):
            continue
        if crop not in crops:
            crops.append(crop)
        chosen = chosen or event
    if chosen is None and events:
        chosen = events[0]  # no crop on file: the place alone; the next sighting gives the look
    placed = [e for e in events if e.object_position is not None and e.accuracy_m is not None]
    if placed:
        chosen = min(placed, key=lambda e: (e.accuracy_m, -e.observed_at.timestamp()))
    if chosen is None or chosen.lat is None or chosen.lon is None:
        return None
    replaced = _entry_the_case_named(session, case_id)
    inherited = None
    if replaced is None and since_reach_m > 0:
        since = entries_since(session, case, since_reach_m)
        inherited = replaced = since[0][1] if since else None
    description = f"permitted on case {case_id}"
    if replaced is not None:
        permit = f"permit {replaced.permit_id}, " if replaced.permit_id else ""
        description += f"; replaces register entry {replaced.id} ({permit}{replaced.source})"
    entry = SignIn(
        lat=chosen.lat,
        lon=chosen.lon,
        source="review",
        description=description,
        permit_id=inherited.permit_id if inherited is not None else None,
        valid_until=inherited.valid_until if inherited is not None else None,
    )
    sign = add_sign(session, entry, actor, now, crops=crops, case_id=case_id)
    if replaced is not None:
        replaced.superseded_by, replaced.superseded_at = sign.id, now
        session.flush()
    return sign


def _entry_the_case_named(session: Session, case_id: int) -> Sign | None:
    """The entry in force that the register compared the case's first sighting with (an expired,
    changed or unverified sign; one in a no-sign zone may name one too), or None for a new sign."""
    named = session.scalars(
        select(SignSighting.sign_id)
        .where(
            SignSighting.case_id == case_id,
            SignSighting.sign_id.is_not(None),
            SignSighting.outcome != SignOutcome.pending,
        )
        .order_by(SignSighting.id)
        .limit(1)
    ).first()
    entry = session.get(Sign, named) if named is not None else None
    return entry if entry is not None and entry.superseded_by is None else None


def keep_photo(session: Session, store: EvidenceStore, data: bytes, by: str, now: datetime) -> str:
    """Put a register photo that came with no event (a permit list's) in the evidence store, so the
    console and the API can show it; marked referenced, so the orphan clean-up keeps it. Its SHA-256."""
    try:
        stored = store.put(data)
    except StreetWatchError as exc:
        raise SignError(f"photo: {exc}") from exc
    if session.get(Evidence, stored.sha256) is None:
        session.add(Evidence(**stored.row(by[:64], now), referenced_at=now))
        session.flush()
    return stored.sha256


def move_sign(sign: Sign, lat: float, lon: float) -> None:
    """Put an entry at a corrected place (its cell follows)."""
    sign.lat, sign.lon = lat, lon
    sign.cell = encode(lat, lon, CELL_PRECISION)


def unregister_case(session: Session, case_id: int) -> int:
    """Remove the entries a review registered from ``case_id`` (its permitted decision was taken back)."""
    signs = session.scalars(select(Sign).where(Sign.case_id == case_id, Sign.source == "review")).all()
    for sign in signs:
        _delete(session, sign)
    return len(signs)


def _delete(session: Session, sign: Sign) -> None:
    """Remove an entry; an entry it had replaced is in force again."""
    session.execute(
        update(Sign).where(Sign.superseded_by == sign.id).values(superseded_by=None, superseded_at=None)
    )
    session.delete(sign)
    session.flush()


def remove_sign(session: Session, sign_id: int) -> None:
    sign = session.get(Sign, sign_id)
    if sign is None:
        raise SignError(f"no register entry {sign_id}")
    _delete(session, sign)

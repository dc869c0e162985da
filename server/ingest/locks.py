"""Locks that keep concurrent ingest workers from opening two cases for one violation.

Every event names the resources its matching reads and writes: the geohash
cells around it (place-bound types), its device + track (moving types, and the
same-track rule), and its evidence. A batch takes all of its keys at the start
of its transaction, in one sorted order, as PostgreSQL transaction-level
advisory locks; two workers that touch the same spot therefore run one after
the other, and because every worker sorts the same way they cannot deadlock on
these locks. SQLite needs none of this: ``BEGIN IMMEDIATE`` already lets one
writer at a time in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, BIGINT
from sqlalchemy.orm import Session

from server.matching.geohash import cells_covering
from server.settings import CELL_PRECISION, ServerSettings
from streetwatch.events import ViolationEvent

_LOCK_ALL = text(
    # unnest() yields the array in order, so the locks are taken in the order given.
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(:keys) AS k"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a resource name (collisions only cost some waiting)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def event_lock_names(event: ViolationEvent, settings: ServerSettings) -> set[str]:
    """The resources matching ``event`` may touch."""
    names = {f"track:{event.device_id}:{event.track_id}"}
    rule = settings.rule(event.violation_type)
    if event.position is not None and not rule.moving:
        for cell in cells_covering(event.position.lat, event.position.lon, rule.radius_m, CELL_PRECISION):
            names.add(f"cell:{event.violation_type.value}:{cell}")
    return names


def cell_lock_names(cells: Iterable[str], violation_types: Iterable[str]) -> set[str]:
    types = list(violation_types)
    return {f"cell:{t}:{cell}" for cell in cells for t in types}


def acquire(session: Session, names: Iterable[str]) -> int:
    """Take the advisory locks for ``names`` (PostgreSQL); return how many were taken."""
    keys = sorted({lock_key(n) for n in names})
    if not keys or session.get_bind().dialect.name != "postgresql":
        return 0
    session.execute(_LOCK_ALL, {"keys": keys})
    return len(keys)

"""Locks that keep concurrent ingest workers from opening two cases for one violation.

Every event names the resources its matching reads and writes, from its
search scope (:mod:`server.ingest.scope`): the geohash cells around it
(place-bound types), its device + track (moving types, and the same-track rule);
and every image its SHA-256. A batch takes all of its keys at the start
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

from server.cases.coverage import coverage_cells
from server.ingest.scope import SearchScope, search_scope
from server.settings import ServerSettings
from streetwatch.events import ViolationEvent
from streetwatch.messages import TelemetryMessage

_LOCK_ALL = text(
    # unnest() yields the array in order, so the locks are taken in the order given.
    "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(:keys) AS k"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


_TRY_ALL = text(
    # Never waits: returns the keys it could take now; the others belong to a concurrent batch.
    "SELECT k FROM unnest(:keys) AS k WHERE pg_try_advisory_xact_lock(k)"
).bindparams(bindparam("keys", type_=ARRAY(BIGINT)))


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a resource name (collisions only cost some waiting)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def event_lock_names(event: ViolationEvent, settings: ServerSettings) -> set[str]:
    """The resources matching ``event`` may touch: its search scope."""
    return scope_lock_names(search_scope(event, settings.rule(event.violation_type)))


def scope_lock_names(scope: SearchScope) -> set[str]:
    """One name per track and per (violation type, cell) that matching within ``scope`` reads."""
    names = {f"track:{scope.device_id}:{scope.track_id}"}
    names |= cell_lock_names(scope.cells, [scope.violation_type])
    return names


def cell_lock_names(cells: Iterable[str], violation_types: Iterable[str]) -> set[str]:
    types = list(violation_types)
    return {f"cell:{t}:{cell}" for cell in cells for t in types}


def evidence_lock_names(sha256: str) -> set[str]:
    return {f"evidence:{sha256}"}


def telemetry_lock_names(message: TelemetryMessage, settings: ServerSettings) -> set[str]:
    """The cells whose cases a patrol's coverage may mark possibly resolved."""
    static_types = [t.value for t, r in settings.matching.items() if not r.moving]
    return cell_lock_names(coverage_cells(message.coverage, settings), static_types)


def acquire(session: Session, names: Iterable[str]) -> int:
    """Take the advisory locks for ``names`` (PostgreSQL); return how many were taken."""
    keys = sorted({lock_key(n) for n in names})
    if not keys or session.get_bind().dialect.name != "postgresql":
        return 0
    session.execute(_LOCK_ALL, {"keys": keys})
    return len(keys)


def try_acquire(session: Session, names: Iterable[str]) -> set[str]:
    """Take what is free of ``names`` without waiting; return the names now held.

    Lets a worker get on with the part of its batch no other worker is touching, and
    leave the rest for a later transaction (see ``server.ingest.storer``).
    """
    wanted = set(names)
    if not wanted or session.get_bind().dialect.name != "postgresql":
        return wanted
    by_key: dict[int, list[str]] = {}
    for name in wanted:
        by_key.setdefault(lock_key(name), []).append(name)
    held = session.scalars(_TRY_ALL, {"keys": sorted(by_key)})
    return {name for key in held for name in by_key[int(key)]}

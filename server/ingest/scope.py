"""Where matching one event looks for cases: its search scope.

    scope = search_scope(event, settings.rule(event.violation_type))

One answer, used three times: the advisory locks a batch takes
(:func:`server.ingest.locks.scope_lock_names`), the cases it preloads
(:meth:`server.ingest.case_cache.CaseCache.preload`) and the candidates the
matcher is given (:meth:`~server.ingest.case_cache.CaseCache.candidates`). Locks
must cover exactly what matching reads, or two workers can open two cases for one
violation; computing the scope once keeps the three from drifting apart.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from server.matching.geohash import cells_covering
from server.settings import CELL_PRECISION, MatchingRule
from streetwatch.events import ViolationEvent


@dataclass(frozen=True, slots=True)
class SearchScope:
    """The cases one event may join: those of its track, and (place-bound types) those in its cells."""

    violation_type: str
    device_id: str
    track_id: uuid.UUID
    #: Geohash cells within the matching radius; empty when the event matches by track only
    #: (moving violations, or no position).
    cells: frozenset[str]

    @property
    def by_place(self) -> bool:
        return bool(self.cells)


def search_scope(event: ViolationEvent, rule: MatchingRule) -> SearchScope:
    """The scope of ``event`` under ``rule`` (its violation type's matching rule)."""
    cells: frozenset[str] = frozenset()
    place = event.place
    if place is not None and not rule.moving:
        cells = frozenset(cells_covering(place.lat, place.lon, rule.radius_m, CELL_PRECISION))
    return SearchScope(event.violation_type.value, event.device_id, event.track_id, cells)

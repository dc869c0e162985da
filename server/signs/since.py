"""Open signboard cases and register entries made after them, at the same place.

The register decides when a sighting arrives: a case opened before its sign's permit was imported
(or registered by hand) keeps saying "no sign is registered here". These queries close that gap
for the people who act on it:

    entries = entries_since(session, case, reach_m)       # the case view: "registered since it opened"
    cases = open_cases_near(session, places, reach_m)     # a permit import: the open cases it covers

Nothing is decided for the dispatcher: a permit at the place is not proof that the case shows the
permitted sign (a shop may hang a second one), so the case stays open until someone rejects it as
permitted, with the registered sign's photo beside the case's.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from server.cases.workflow import OPEN_STATES
from server.db.models import Case, Sign
from server.matching.geo import haversine_m, metres_to_degrees
from streetwatch.events import ViolationType

_SIGNBOARD = ViolationType.illegal_signboard.value


def reach_of(max_distance_m: float, max_accuracy_m: float) -> float:
    """How far from a case's place a register entry may be its sign: the register's own reach for
    a sighting with the worst GPS accuracy it still trusts (``signs.max_distance_m`` plus
    ``signs.max_accuracy_m``)."""
    return max_distance_m + max_accuracy_m


def entries_since(session: Session, case: Case, reach_m: float) -> list[tuple[float, Sign]]:
    """Register entries in force within ``reach_m`` of a signboard case's place, made after the case
    opened and not from the case itself: (distance in metres, entry), nearest first."""
    if case.violation_type != _SIGNBOARD or case.lat is None or case.lon is None:
        return []
    dlat, dlon = metres_to_degrees(case.lat, reach_m)
    rows = session.scalars(
        select(Sign).where(
            Sign.superseded_by.is_(None),
            Sign.created_at > case.opened_at,
            or_(Sign.case_id.is_(None), Sign.case_id != case.id),
            Sign.lat.between(case.lat - dlat, case.lat + dlat),
            Sign.lon.between(case.lon - dlon, case.lon + dlon),
        )
    ).all()
    near = [(haversine_m(case.lat, case.lon, sign.lat, sign.lon), sign) for sign in rows]
    return sorted(((d, s) for d, s in near if d <= reach_m), key=lambda item: (item[0], item[1].id))


def open_cases_near(session: Session, places: Iterable[tuple[float, float]], reach_m: float) -> list[int]:
    """Open signboard cases (not merged away) within ``reach_m`` of any of ``places`` (lat, lon),
    by case id."""
    places = list(places)
    if not places:
        return []
    found: set[int] = set()
    # In chunks: one OR of boxes per query keeps a large permit list from one huge statement.
    for start in range(0, len(places), 200):
        chunk = places[start : start + 200]
        boxes = []
        for lat, lon in chunk:
            dlat, dlon = metres_to_degrees(lat, reach_m)
            boxes.append(
                and_(Case.lat.between(lat - dlat, lat + dlat), Case.lon.between(lon - dlon, lon + dlon))
            )
        rows = session.execute(
            select(Case.id, Case.lat, Case.lon).where(
                Case.violation_type == _SIGNBOARD,
                Case.state.in_(OPEN_STATES),
                Case.merged_into.is_(None),
                or_(*boxes),
            )
        ).all()
        for case_id, case_lat, case_lon in rows:
            if (
                case_lat is not None
                and case_lon is not None
                and any(haversine_m(case_lat, case_lon, lat, lon) <= reach_m for lat, lon in chunk)
            ):
                found.add(case_id)
    return sorted(found)

""" "Possibly resolved" from patrol coverage.

A patrol vehicle reports where it drove (telemetry). When it passed within a
case's radius and sent no event of that case around that time, the violation
may be gone: the case becomes ``possibly_resolved`` for a dispatcher to check.
If the violation is seen again, ingest moves the case back
(:func:`server.cases.service.seen_again`), so a detection that merely lagged
behind the telemetry corrects itself.

A track decides about other devices' cases, so it must be believable: ingest
refuses one that runs ahead of the server's clock, reaches too far back, goes
back in time or moves faster than a vehicle (:func:`implausible_track`), and
times are clamped to the server's clock here as they are for events (a clock
running a little ahead must not stretch a pass into the future).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.cases.service import SYSTEM_COVERAGE, transition
from server.db.models import Case, CaseState, Event
from server.matching.geo import haversine_m
from server.matching.geohash import cells_covering
from server.settings import CELL_PRECISION, IngestLimits, ServerSettings
from streetwatch.messages import CoveragePoint

#: GPS fixes jump by this much without the vehicle moving (multipath, a fix after a tunnel).
GPS_JUMP_ALLOWANCE_M = 500.0

#: Only cases a dispatcher has not yet finished with can become possibly resolved.
COVERABLE_STATES = (CaseState.new, CaseState.confirmed, CaseState.dispatched)


def coverage_cells(points: Sequence[CoveragePoint], settings: ServerSettings) -> set[str]:
    """The geohash cells whose cases a pass over ``points`` could cover."""
    radius = max((r.radius_m for r in settings.matching.values() if not r.moving), default=0.0)
    cells: set[str] = set()
    for point in points:
        cells.update(cells_covering(point.lat, point.lon, radius, CELL_PRECISION))
    return cells


def mark_possibly_resolved(
    session: Session,
    device_id: str,
    points: Sequence[CoveragePoint],
    settings: ServerSettings,
    now: datetime,
) -> list[int]:
    """Mark the open cases ``device_id`` drove past without seeing; return their ids."""
    if not points or not settings.coverage.enabled:
        return []
    grace = timedelta(seconds=settings.coverage.grace_s)
    youngest = now - timedelta(seconds=settings.coverage.min_case_age_s)
    static_types = [t.value for t, r in settings.matching.items() if not r.moving]
    cases = session.scalars(
        select(Case).where(
            Case.cell.in_(sorted(coverage_cells(points, settings))),
            Case.state.in_(COVERABLE_STATES),
            Case.violation_type.in_(static_types),
            Case.opened_at <= youngest,
        )
    ).all()
    marked: list[int] = []
    for case in cases:
        if case.lat is None or case.lon is None:
            continue
        radius = settings.rule(case.violation_type).radius_m
        passes = [p for p in points if haversine_m(p.lat, p.lon, case.lat, case.lon) <= radius]
        if not passes:
            continue
        start = min(min(p.at, now) for p in passes) - grace
        end = max(min(p.at, now) for p in passes) + grace
        if case.last_event_at >= start:
            continue  # someone saw it during (or just before) this pass
        seen_by_device = session.scalar(
            select(Event.event_id)
            .where(
                Event.case_id == case.id,
                Event.device_id == device_id,
                Event.observed_at >= start,
                Event.observed_at <= end,
            )
            .limit(1)
        )
        if seen_by_device is not None:
            continue
        closest = min(haversine_m(p.lat, p.lon, case.lat, case.lon) for p in passes)
        reason = (
            f"{device_id} passed {closest:.0f} m away between {start + grace:%Y-%m-%d %H:%M:%S} and "
            f"{end - grace:%H:%M:%S} UTC without seeing it"
        )
        transition(session, case.id, CaseState.possibly_resolved, SYSTEM_COVERAGE, reason, now=now)
        marked.append(case.id)
    return marked


def implausible_track(points: Sequence[CoveragePoint], now: datetime, limits: IngestLimits) -> str | None:
    """Why a coverage track cannot be believed, or None when it can.

    Refused: a point further ahead of ``now`` than ``max_clock_skew_s`` or older than
    ``max_coverage_age_h``, points out of time order, and a step between two points faster
    than ``max_coverage_speed_mps`` (beyond a GPS jump allowance).
    """
    ahead = now + timedelta(seconds=limits.max_clock_skew_s)
    oldest = now - timedelta(hours=limits.max_coverage_age_h)
    previous: CoveragePoint | None = None
    for index, point in enumerate(points):
        if point.at > ahead:
            return (
                f"coverage point {index} is dated {point.at:%Y-%m-%dT%H:%M:%SZ}, "
                f"{(point.at - now).total_seconds():.0f} s ahead of the server clock "
                f"(allowed: {limits.max_clock_skew_s:.0f} s)"
            )
        if point.at < oldest:
            return (
                f"coverage point {index} is dated {point.at:%Y-%m-%dT%H:%M:%SZ}, more than "
                f"{limits.max_coverage_age_h:g} h before the server clock"
            )
        if previous is not None:
            seconds = (point.at - previous.at).total_seconds()
            if seconds < 0:
                return f"coverage point {index} is older than the point before it (oldest first)"
            metres = haversine_m(previous.lat, previous.lon, point.lat, point.lon)
            if metres > GPS_JUMP_ALLOWANCE_M + limits.max_coverage_speed_mps * seconds:
                return (
                    f"coverage moves {metres:.0f} m in {seconds:.0f} s between points {index - 1} and "
                    f"{index} (limit {limits.max_coverage_speed_mps:g} m/s)"
                )
        previous = point
    return None

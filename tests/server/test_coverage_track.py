"""Which coverage tracks the server believes (server.cases.coverage.implausible_track)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.cases.coverage import implausible_track
from server.settings import IngestLimits
from streetwatch.messages import CoveragePoint
from tests.server.factories import offset

NOW = datetime(2026, 12, 6, 5, 0, tzinfo=timezone.utc)


def track(*steps: tuple[float, float]) -> list[CoveragePoint]:
    """Points at (metres north of the corner, seconds after NOW - 1 h)."""
    start = NOW - timedelta(hours=1)
    points = []
    for north_m, seconds in steps:
        lat, lon = offset(north_m=north_m)
        points.append(CoveragePoint(lat=lat, lon=lon, at=start + timedelta(seconds=seconds)))
    return points


def test_a_patrol_at_city_speed_is_believed() -> None:
    # 15 m/s for ten minutes, plus a 300 m GPS jump within the allowance.
    steps = [(15.0 * s, float(s)) for s in range(0, 600, 30)] + [(15.0 * 600 + 300, 601.0)]
    assert implausible_track(track(*steps), NOW, IngestLimits()) is None


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([(0, 0), (5_000, 10)], "moves 5000 m in 10 s between points 0 and 1"),
        ([(0, 0), (10, 30), (20, 20)], "point 2 is older than the point before it"),
        ([(0, 3600 + 301)], "301 s ahead of the server clock"),
        ([(0, -366 * 24 * 3600)], "more than 8784 h before the server clock"),
    ],
)
def test_implausible_tracks_are_named(steps: list[tuple[float, float]], expected: str) -> None:
    reason = implausible_track(track(*steps), NOW, IngestLimits())
    assert reason is not None and expected in reason


def test_the_bounds_are_settings() -> None:
    fast = track((0, 0), (3_000, 10))  # 250 m/s beyond the 500 m allowance
    assert implausible_track(fast, NOW, IngestLimits()) is not None
    assert implausible_track(fast, NOW, IngestLimits(max_coverage_speed_mps=300)) is None
    ahead = track((0, 3600 + 100))
    assert implausible_track(ahead, NOW, IngestLimits(max_clock_skew_s=60)) is not None


def test_a_pass_from_a_clock_slightly_ahead_is_judged_at_the_server_time(
    sessions: sessionmaker[Session],
) -> None:
    """A point 200 s ahead (within the allowed skew) is clamped to now: the case another van saw
    a minute ago counts as seen during the pass and stays open. Unclamped, the pass seemed to
    happen after that sighting and the case was marked possibly resolved."""
    from server.db.models import Case
    from server.ingest.process import IngestBatch, ingest_event
    from server.settings import ServerSettings
    from streetwatch.messages import TelemetryMessage
    from tests.server.factories import make_event

    settings = ServerSettings()
    with sessions.begin() as session:
        opened = ingest_event(
            session, make_event(at=NOW - timedelta(minutes=10)), NOW - timedelta(minutes=10)
        )
        ingest_event(
            session, make_event(north_m=2, at=NOW - timedelta(seconds=60)), NOW - timedelta(seconds=60)
        )
    lat, lon = offset(north_m=1)
    ahead = NOW + timedelta(seconds=200)
    telemetry = TelemetryMessage.model_validate(
        {
            "device_id": "van-07",
            "at": ahead,
            "period_s": 10,
            "uptime_s": 100,
            "frames": 100,
            "fps": 10,
            "coverage": [{"lat": lat, "lon": lon, "at": ahead}],
            "outbox": {"events": 0, "evidence": 0, "bytes": 0},
        }
    )
    assert implausible_track(telemetry.coverage, NOW, settings.limits) is None
    with sessions.begin() as session:
        batch = IngestBatch(session, settings, NOW)
        marked = batch.add_telemetry(telemetry)
        batch.finish()
    assert marked == []
    with sessions() as session:
        case = session.get(Case, opened.case_id)
        assert case is not None and case.state == "new"

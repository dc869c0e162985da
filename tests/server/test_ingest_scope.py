"""The locks a batch takes cover exactly what matching reads: one search scope for both.

If the cells or tracks the preload queries ever differ from the advisory locks (say, a
radius changed in one place only), two workers could each open a case for one violation.
These tests read the parameters of the SQL the batch really runs and compare them with
the lock names.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, sessionmaker

from server.ingest.process import IngestBatch
from server.settings import CELL_PRECISION, ServerSettings
from streetwatch.events import ViolationEvent
from tests.server.factories import T0, make_event

SETTINGS = ServerSettings()
_GEOHASH = set("0123456789bcdefghjkmnpqrstuvwxyz")


@contextmanager
def sql_parameters(session: Session) -> Iterator[list[Any]]:
    """Every bound parameter value of the statements run in ``session`` meanwhile."""
    seen: list[Any] = []
    connection = session.connection()

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        if not statement.lstrip().upper().startswith("SELECT"):
            return
        values = parameters.values() if isinstance(parameters, dict) else parameters
        seen.extend(values)

    sa_event.listen(connection, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sa_event.remove(connection, "before_cursor_execute", record)


def _as_uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and len(value) in (32, 36):
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def names_read(event: ViolationEvent, parameters: list[Any]) -> set[str]:
    """Lock-style names of the cells and tracks the statements searched for ``event``'s cases."""
    names: set[str] = set()
    for value in parameters:
        if isinstance(value, str) and len(value) == CELL_PRECISION and set(value) <= _GEOHASH:
            names.add(f"cell:{event.violation_type.value}:{value}")
        as_uuid = _as_uuid(value)
        if as_uuid is not None and as_uuid != event.event_id:
            names.add(f"track:{event.device_id}:{as_uuid}")
    return names


EVENTS = {
    "place-bound": lambda: make_event(),
    "place-bound, widest radius": lambda: make_event(violation_type="street_vending", north_m=70),
    "place-bound, small radius": lambda: make_event(violation_type="illegal_signboard", east_m=-40),
    "moving truck": lambda: make_event(violation_type="unsealed_truck"),
    "no position": lambda: make_event(position=False),
}


@pytest.mark.parametrize("kind", list(EVENTS))
def test_the_locks_cover_exactly_the_cells_and_track_matching_reads(
    sessions: sessionmaker[Session], kind: str
) -> None:
    event = EVENTS[kind]()
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, T0)
        locked = batch.lock_names(events=[event])
        with sql_parameters(session) as parameters:
            batch.preload([event])
            batch.add_event(event)
        batch.finish()
    read = names_read(event, parameters)
    assert read == locked, f"read but not locked: {read - locked}; locked but not read: {locked - read}"
    place_bound = not SETTINGS.rule(event.violation_type).moving and event.position is not None
    assert any(n.startswith("cell:") for n in locked) == place_bound


def test_a_batch_reads_the_union_of_its_events_scopes(sessions: sessionmaker[Session]) -> None:
    events = [make_event(north_m=300 * i, device_id=f"van-{i}") for i in range(4)]
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, T0)
        locked = batch.lock_names(events=events)
        with sql_parameters(session) as parameters:
            batch.preload(events)
        batch.finish()
    ids = {e.event_id for e in events}
    cells = {
        f"cell:garbage_overflow:{v}" for v in parameters if isinstance(v, str) and len(v) == CELL_PRECISION
    }
    tracks = {_as_uuid(v) for v in parameters} - {None} - ids
    assert cells == {n for n in locked if n.startswith("cell:")}
    assert {f"track:{e.device_id}:{e.track_id}" for e in events if e.track_id in tracks} == {
        n for n in locked if n.startswith("track:")
    }


def test_telemetry_locks_cover_exactly_the_cells_whose_cases_coverage_reads(
    sessions: sessionmaker[Session],
) -> None:
    """A patrol's track may mark other devices' cases possibly resolved: those cells are locked."""
    from streetwatch.messages import TelemetryMessage
    from tests.server.factories import offset

    points = [offset(north_m=40 * i, east_m=15 * i) for i in range(4)]
    telemetry = TelemetryMessage.model_validate(
        {
            "device_id": "van-07",
            "at": T0,
            "period_s": 30,
            "uptime_s": 600,
            "frames": 300,
            "fps": 10,
            "coverage": [{"lat": lat, "lon": lon, "at": T0} for lat, lon in points],
            "outbox": {"events": 0, "evidence": 0, "bytes": 0},
        }
    )
    static = [t.value for t, rule in SETTINGS.matching.items() if not rule.moving]
    with sessions.begin() as session:
        batch = IngestBatch(session, SETTINGS, T0)
        locked = batch.lock_names(telemetry=[telemetry])
        with sql_parameters(session) as parameters:
            batch.add_telemetry(telemetry)
        batch.finish()
    cells = {v for v in parameters if isinstance(v, str) and len(v) == CELL_PRECISION and set(v) <= _GEOHASH}
    assert cells, "coverage read no cells"
    assert {f"cell:{t}:{c}" for c in cells for t in static} == locked

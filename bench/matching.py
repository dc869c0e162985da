"""Match latency with 1,000 vs 100,000 open cases: the geohash index keeps it flat.

    python bench/matching.py [--probes 2000] [--small 1000] [--large 100000]

Prints ONE JSON object. For each database (SQLite always; PostgreSQL when
``STREETWATCH_TEST_PG_URL`` is set, in a throw-away schema) and each case count,
it fills the ``cases`` table with open garbage cases at a constant density (one
per 20,000 m², a busy city: more cases means a bigger area, as when a
deployment grows to more districts), then times what ingest does for a lone event to
decide its case: ``IngestBatch.preload`` (duplicate check, candidate cases
through the geohash cells, the track's case) plus the pure
:func:`~server.matching.matcher.match_event`. Probe events fall at random
points of the same area; the probes of the two databases alternate, so load
from other work on a shared machine falls on both alike. Latencies are medians
and 95th percentiles over the probes; the ratio large/small is the figure of
merit (target <= 1.2).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from server.db.migrate import upgrade
from server.db.models import Case
from server.db.session import make_engine, session_factory
from server.ingest.process import IngestBatch
from server.matching.geohash import encode
from server.matching.matcher import match_event
from server.settings import CELL_PRECISION, ServerSettings
from streetwatch.events import ViolationEvent, utcnow

TARGET_RATIO = 1.2
M2_PER_CASE = 20_000.0
LAT0, LON0 = 31.0, 121.0
M_PER_DEG = 111_195.0


def area_side_m(cases: int) -> float:
    return math.sqrt(cases * M2_PER_CASE)


def random_point(rng: random.Random, side_m: float) -> tuple[float, float]:
    north, east = rng.uniform(0, side_m), rng.uniform(0, side_m)
    return LAT0 + north / M_PER_DEG, LON0 + east / (M_PER_DEG * math.cos(math.radians(LAT0)))


def fill_cases(url: str, count: int, seed: int) -> None:
    rng = random.Random(seed)
    now = utcnow()
    side = area_side_m(count)
    engine = make_engine(url)
    rows: list[dict[str, Any]] = []
    for _ in range(count):
        lat, lon = random_point(rng, side)
        rows.append(
            {
                "violation_type": "garbage_overflow",
                "state": "new",
                "priority": 2,
                "title": "bench",
                "lat": lat,
                "lon": lon,
                "cell": encode(lat, lon, CELL_PRECISION),
                "device_id": "bench",
                "track_id": uuid.uuid4(),
                "opened_at": now,
                "first_event_at": now,
                "last_event_at": now - timedelta(minutes=rng.uniform(0, 600)),
                "event_count": 1,
                "device_count": 1,
                "max_score": 0.8,
                "candidate": False,
                "updated_at": now,
            }
        )
    with engine.begin() as connection:
        for start in range(0, len(rows), 5000):
            connection.execute(insert(Case), rows[start : start + 5000])
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE cases"))
        else:
            connection.execute(text("ANALYZE"))
    engine.dispose()


def probe_events(count: int, cases: int, seed: int) -> list[ViolationEvent]:
    rng = random.Random(seed + 1)
    side = area_side_m(cases)
    now = utcnow()
    events = []
    for _ in range(count):
        lat, lon = random_point(rng, side)
        events.append(
            ViolationEvent.model_validate(
                {
                    "event_id": uuid.uuid4(),
                    "device_id": "probe",
                    "track_id": uuid.uuid4(),
                    "sequence": 0,
                    "lifecycle": "new",
                    "violation_type": "garbage_overflow",
                    "candidate": False,
                    "detector_class": "garbage",
                    "score": 0.7,
                    "box": (1, 1, 50, 50),
                    "frame_width": 640,
                    "frame_height": 480,
                    "observed_at": now,
                    "first_seen_at": now,
                    "frames_seen": 3,
                    "position": {"lat": lat, "lon": lon, "source": "gpx"},
                    "model": {"name": "bench", "version": "1"},
                }
            )
        )
    return events


def time_matching(urls: list[str], probes: list[list[ViolationEvent]]) -> list[dict[str, float]]:
    """Latency per database, the databases' probes interleaved so that load from other work on
    the machine falls on every database alike."""
    settings = ServerSettings()
    rule = settings.rule("garbage_overflow")
    engines = [make_engine(url) for url in urls]
    sessions = [session_factory(engine)() for engine in engines]
    latencies: list[list[float]] = [[] for _ in urls]
    candidates_seen: list[list[int]] = [[] for _ in urls]
    now = utcnow()
    try:
        for i in range(len(probes[0])):
            for db, session in enumerate(sessions):
                event = probes[db][i]
                batch = IngestBatch(session, settings, now)  # a fresh batch: no in-memory shortcuts
                start = time.perf_counter()
                batch.preload([event])  # the queries: duplicate check, cells, track
                candidates = batch.cases.candidates(batch.scope(event))
                match_event(event, candidates, rule, now)
                elapsed = time.perf_counter() - start
                if i >= 50:  # the first probes warm the page cache and the statement cache
                    latencies[db].append(elapsed)
                    candidates_seen[db].append(len(candidates))
                session.rollback()
    finally:
        for session in sessions:
            session.close()
        for engine in engines:
            engine.dispose()
    results = []
    for measured, seen in zip(latencies, candidates_seen, strict=True):
        measured.sort()
        results.append(
            {
                "median_us": round(statistics.median(measured) * 1e6, 1),
                "p95_us": round(measured[int(len(measured) * 0.95)] * 1e6, 1),
                "mean_candidates": round(statistics.fmean(seen), 2),
            }
        )
    return results


def pg_schema_url(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base: str, schema: str) -> None:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def run_backend(make_url_for: Any, sizes: list[int], probes: int) -> dict[str, Any]:
    made = [make_url_for(size) for size in sizes]
    try:
        for (url, _), size in zip(made, sizes, strict=True):
            upgrade(url)
            fill_cases(url, size, seed=size)
        measured = time_matching(
            [url for url, _ in made], [probe_events(probes, size, seed=size) for size in sizes]
        )
    finally:
        for _, cleanup in made:
            cleanup()
    out: dict[str, Any] = {f"{size}_cases": m for size, m in zip(sizes, measured, strict=True)}
    small, large = (m["median_us"] for m in measured)
    out["ratio_large_over_small"] = round(large / small, 3)
    out["meets_target"] = large / small <= TARGET_RATIO
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=100_000)
    args = parser.parse_args()
    sizes = [args.small, args.large]
    result: dict[str, Any] = {
        "benchmark": "case matching latency (candidate lookup + match_event) per event",
        "density_m2_per_case": M2_PER_CASE,
        "probes": args.probes,
        "target_ratio": TARGET_RATIO,
    }
    with tempfile.TemporaryDirectory() as tmp:

        def sqlite_url(size: int) -> tuple[str, Any]:
            path = Path(tmp) / f"match_{size}.db"
            return f"sqlite:///{path}", lambda: path.unlink(missing_ok=True)

        result["sqlite"] = run_backend(sqlite_url, sizes, args.probes)
    base = os.environ.get("STREETWATCH_TEST_PG_URL")
    if base:

        def pg_url(_size: int) -> tuple[str, Any]:
            url, schema = pg_schema_url(base)
            return url, lambda: drop_schema(base, schema)

        result["postgresql"] = run_backend(pg_url, sizes, args.probes)
    else:
        result["postgresql"] = "skipped: STREETWATCH_TEST_PG_URL is not set (scripts/postgres.sh start)"
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

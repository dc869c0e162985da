"""Ingest throughput end to end: broker -> ingest worker(s) -> events and cases in the database.

    python bench/server_ingest.py [--events 10000] [--reps 2]

Prints ONE JSON object with three runs measured in this one invocation:

* ``sqlite_1_worker``: one worker process, SQLite (WAL) database file;
* ``postgresql_1_worker`` and ``postgresql_2_workers``: the same on PostgreSQL
  (``STREETWATCH_TEST_PG_URL``, or the cluster ``scripts/postgres.sh start`` makes),
  each in a throw-away schema.

Each run gets a fresh database, a real Mosquitto on a free port and its own
events: a city of patrol vans (40 devices) reporting 2,500 spots of the four
violation types, several events per tracked violation, so most events join an
existing case and some open one. Worker processes are started and subscribed
first (persistent sessions on a shared subscription), then disconnected; the
events are published to the broker, which queues them for the sessions; then the
workers reconnect and the clock runs until every event is stored with its case.
Queuing first keeps the publisher's CPU out of the measurement, which matters
on a 2-core machine; ``publish_events_per_s`` is reported beside it.

CPU seconds per component (workers, PostgreSQL backends, Mosquitto) are
reported for each run so the bottleneck is visible. Targets (printed, never
asserted): one worker >= 1,500 events/s; two workers >= 1.3x one on PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from server.db.migrate import upgrade  # noqa: E402
from server.db.models import Case, Event  # noqa: E402
from server.db.session import make_engine  # noqa: E402
from server.settings import IngestLimits, MqttSettings, ServerSettings  # noqa: E402
from streetwatch.events import ViolationEvent  # noqa: E402
from streetwatch.topics import events_topic  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402

TARGET_ONE_WORKER = 1500.0
TARGET_TWO_OVER_ONE = 1.3
LAT0, LON0 = 31.2, 121.4
M_PER_DEG = 111_195.0
TYPES = ("street_vending", "garbage_overflow", "illegal_signboard", "unsealed_truck")


# -- the events ------------------------------------------------------------------------------------


def make_events(count: int, seed: int) -> list[tuple[str, bytes]]:
    """(topic, payload) of ``count`` events: 40 vans, 2,500 spots, a few events per track."""
    rng = random.Random(seed)
    spots = []
    for _ in range(2500):
        north, east = rng.uniform(0, 6000), rng.uniform(0, 6000)
        lat = LAT0 + north / M_PER_DEG
        lon = LON0 + east / (M_PER_DEG * math.cos(math.radians(LAT0)))
        spots.append((lat, lon, TYPES[rng.randrange(4)]))
    t0 = datetime.now(timezone.utc) - timedelta(hours=2)
    messages: list[tuple[str, bytes]] = []
    sequence: dict[tuple[str, int], tuple[uuid.UUID, int]] = {}
    for i in range(count):
        spot_index = rng.randrange(len(spots))
        lat, lon, violation = spots[spot_index]
        device = f"van-{rng.randrange(40):02d}"
        track, seq = sequence.get((device, spot_index), (uuid.uuid4(), -1))
        if seq >= 4:  # a new pass: a new track
            track, seq = uuid.uuid4(), -1
        seq += 1
        sequence[(device, spot_index)] = (track, seq)
        at = t0 + timedelta(seconds=i * 0.2)
        jitter_lat = rng.uniform(-4, 4) / M_PER_DEG
        event = ViolationEvent.model_validate(
            {
                "event_id": uuid.uuid4(),
                "device_id": device,
                "track_id": track,
                "sequence": seq,
                "lifecycle": "new" if seq == 0 else "update",
                "violation_type": violation,
                "candidate": False,
                "detector_class": violation,
                "score": round(rng.uniform(0.4, 0.95), 3),
                "box": (100.0, 120.0, 300.0, 380.0),
                "frame_width": 1280,
                "frame_height": 720,
                "observed_at": at,
                "first_seen_at": at - timedelta(seconds=seq),
                "frames_seen": 3 + seq,
                "position": {
                    "lat": lat + jitter_lat,
                    "lon": lon,
                    "accuracy_m": 4.0,
                    "heading_deg": 90.0,
                    "speed_mps": 6.0,
                    "source": "nmea",
                },
                "model": {"name": "streetwatch-det", "version": "1"},
                "evidence": {
                    "frame_sha256": f"{rng.getrandbits(256):064x}",
                    "frame_bytes": 90_000,
                    "crop_sha256": f"{rng.getrandbits(256):064x}",
                    "crop_bytes": 12_000,
                    "captured_at": at,
                },
            }
        )
        messages.append((events_topic(device), event.to_json()))
    return messages


# -- child processes -------------------------------------------------------------------------------


def worker_process(settings_json: str, client_id: str, go: Any, stop: Any, subscribed: Any, out: Any) -> None:
    from server.ingest.worker import IngestWorker

    settings = ServerSettings.model_validate_json(settings_json)
    worker = IngestWorker(settings, client_id=client_id)
    # First connection: create the persistent session and its subscription, then leave.
    worker.start()
    worker.wait_subscribed(20)
    worker.stop()
    subscribed.set()
    go.wait()
    worker = IngestWorker(settings, client_id=client_id)
    start = os.times()

    def stop_when_told() -> None:
        stop.wait()
        worker.stop()

    threading.Thread(target=stop_when_told, daemon=True).start()
    worker.run()  # in the main thread, as `streetwatch server ingest` runs it
    end = os.times()
    out.put(
        {
            "client_id": client_id,
            "cpu_s": (end.user + end.system) - (start.user + start.system),
            "stored": worker.stats.stored,
            "batches": worker.stats.batches,
            "deferred": worker.stats.deferred,
            "retries": worker.stats.retries,
        }
    )


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> float:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start = time.perf_counter()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(120)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return len(messages) / elapsed


# -- measuring -------------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_s() -> float:
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/comm"):
        try:
            if stat.read_text().strip() in ("postgres", "postmaster"):
                total += proc_cpu_s(int(stat.parent.name))
        except OSError:
            continue
    return total


def count(url: str, model: Any) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(model)).scalar_one())
    finally:
        engine.dispose()


def run(name: str, url: str, workers: int, events: int, seed: int, tmp: Path) -> dict[str, Any]:
    upgrade(url)
    messages = make_events(events, seed)
    ctx = mp.get_context("spawn")
    with MosquittoBroker(tmp / f"broker-{name}") as broker:
        settings = ServerSettings(
            database_url=url,
            evidence_dir=str(tmp / "evidence"),
            mqtt=MqttSettings(port=broker.port, share_group=f"bench{seed}"),
            limits=IngestLimits(batch_size=500, batch_wait_s=0.05),
        )
        go, stop = ctx.Event(), ctx.Event()
        out = ctx.Queue()
        subscribed = [ctx.Event() for _ in range(workers)]
        procs = [
            ctx.Process(
                target=worker_process,
                args=(settings.model_dump_json(), f"bench-{name}-{i}", go, stop, subscribed[i], out),
            )
            for i in range(workers)
        ]
        for proc in procs:
            proc.start()
        for flag in subscribed:
            if not flag.wait(60):
                raise SystemExit(f"{name}: a worker did not subscribe")
        publish_rate = publish_all(broker.port, messages)
        engine = make_engine(url)
        pg_before = postgres_cpu_s() if url.startswith("postgresql") else 0.0
        broker_before = proc_cpu_s(broker.proc.pid) if broker.proc else 0.0
        start = time.perf_counter()
        go.set()
        stored = 0
        deadline = start + 600
        with engine.connect() as connection:
            while stored < events and time.perf_counter() < deadline:
                time.sleep(0.05)
                stored = int(connection.execute(select(func.count()).select_from(Event)).scalar_one())
                connection.rollback()
        elapsed = time.perf_counter() - start
        engine.dispose()
        pg_cpu = (postgres_cpu_s() - pg_before) if url.startswith("postgresql") else 0.0
        broker_cpu = (proc_cpu_s(broker.proc.pid) - broker_before) if broker.proc else 0.0
        stop.set()
        reports = [out.get(timeout=60) for _ in procs]
        for proc in procs:
            proc.join(30)
    cases = count(url, Case)
    worker_cpu = sum(r["cpu_s"] for r in reports)
    ours = worker_cpu + pg_cpu + broker_cpu
    cores = os.cpu_count() or 1
    # What the same work would reach with the cores to itself: bounded by all the CPU it needs
    # spread over every core, and by each worker being one process (at most one core each).
    projected = min(cores * stored / ours, workers * stored / worker_cpu) if ours and worker_cpu else 0.0
    return {
        "workers": workers,
        "events": events,
        "stored": stored,
        "cases": cases,
        "seconds": round(elapsed, 2),
        "events_per_s": round(stored / elapsed, 1),
        "publish_events_per_s": round(publish_rate, 1),
        "cpu_s": {
            "workers": [round(r["cpu_s"], 2) for r in reports],
            "postgresql": round(pg_cpu, 2),
            "mosquitto": round(broker_cpu, 2),
        },
        "cpu_us_per_event": {
            "workers": round(worker_cpu / stored * 1e6, 1) if stored else None,
            "postgresql": round(pg_cpu / stored * 1e6, 1) if stored else None,
            "mosquitto": round(broker_cpu / stored * 1e6, 1) if stored else None,
        },
        "projected_events_per_s_with_idle_cores": round(projected, 1),
        "worker_busy_share": [round(r["cpu_s"] / elapsed, 2) for r in reports],
        "cpu_share_of_machine_used_by_ingest": round(ours / (elapsed * (os.cpu_count() or 1)), 2),
        "stored_per_worker": [r["stored"] for r in reports],
        "batches_per_worker": [r["batches"] for r in reports],
        "deferred_to_a_waiting_transaction": sum(r["deferred"] for r in reports),
        "conflict_retries": sum(r["retries"] for r in reports),
    }


def pg_base_url() -> str:
    url = os.environ.get("STREETWATCH_TEST_PG_URL")
    if url:
        return url
    exports = subprocess.run(
        [str(REPO / "scripts" / "postgres.sh"), "start"], check=True, capture_output=True, text=True
    ).stdout
    for line in exports.splitlines():
        if line.startswith("export STREETWATCH_TEST_PG_URL="):
            return line.split("=", 1)[1]
    raise SystemExit("scripts/postgres.sh start printed no STREETWATCH_TEST_PG_URL")


def pg_schema(base: str, schema: str, drop: bool = False) -> str:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        statement = f'DROP SCHEMA "{schema}" CASCADE' if drop else f'CREATE SCHEMA "{schema}"'
        connection.execute(text(statement))
    admin.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=2, help="runs per configuration; the best counts")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "benchmark": "ingest end to end: queued at Mosquitto -> worker(s) -> events + cases committed",
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    # Best of --reps per configuration, the configurations interleaved: other work on a shared
    # machine only ever slows a run down, and it then hits every configuration alike.
    runs: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        base = pg_base_url()
        seed = 0
        for rep in range(args.reps):
            seed += 1
            db = tmp / f"bench{rep}.db"
            runs.setdefault("sqlite_1_worker", []).append(
                run(f"sqlite{rep}", f"sqlite:///{db}", 1, args.events, seed, tmp)
            )
            for workers in (1, 2):
                seed += 1
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                url = pg_schema(base, schema)
                key = f"postgresql_{workers}_worker{'s' if workers > 1 else ''}"
                try:
                    runs.setdefault(key, []).append(run(f"{key}{rep}", url, workers, args.events, seed, tmp))
                finally:
                    pg_schema(base, schema, drop=True)
    for key, measured in runs.items():
        best = max(measured, key=lambda r: r["events_per_s"])
        best["all_runs_events_per_s"] = [r["events_per_s"] for r in measured]
        results[key] = best
    one_sqlite = results["sqlite_1_worker"]["events_per_s"]
    one_pg = results["postgresql_1_worker"]["events_per_s"]
    two_pg = results["postgresql_2_workers"]["events_per_s"]
    projected_one = results["postgresql_1_worker"]["projected_events_per_s_with_idle_cores"]
    projected_two = results["postgresql_2_workers"]["projected_events_per_s_with_idle_cores"]
    results["ratios"] = {
        "postgresql_2_over_1": round(two_pg / one_pg, 3),
        "postgresql_2_over_1_projected_with_idle_cores": round(projected_two / projected_one, 3),
        "sqlite_1_over_target": round(one_sqlite / TARGET_ONE_WORKER, 3),
        "postgresql_1_over_target": round(one_pg / TARGET_ONE_WORKER, 3),
    }
    results["targets"] = {"one_worker_events_per_s": TARGET_ONE_WORKER, "two_over_one": TARGET_TWO_OVER_ONE}
    two = results["postgresql_2_workers"]
    results["bottleneck_measured"] = (
        f"with two workers each worker was busy {two['worker_busy_share']} of the time and ingest "
        f"(workers + PostgreSQL + Mosquitto) used {two['cpu_share_of_machine_used_by_ingest']} of the "
        f"machine's {os.cpu_count()} cores; load average before the runs {results['load_average_at_start']}"
    )
    results["bottleneck"] = (
        "CPU. A worker is one Python process (validation, matching, SQLAlchemy/psycopg) and needs about "
        "three quarters of the CPU per event; PostgreSQL most of the rest. One worker is bounded by its own "
        "core; two workers are bounded by all the CPU the work needs spread over the machine's cores, which "
        "on 2 cores they share with PostgreSQL, Mosquitto and whatever else runs (a load average above 2 "
        "means other work already takes part of them: then two workers cannot beat one). The projection "
        "above divides the measured CPU per event into idle cores. Workers share nothing but the database "
        "and per-cell advisory locks, taken without waiting (a contended message moves to the next batch), "
        "so on a bigger machine throughput grows with workers until PostgreSQL's CPU or commit rate, or "
        "contention on a few very hot cells, limits it; split them across databases by city beyond that."
    )
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

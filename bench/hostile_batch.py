"""Poisoned batches: does 1 % of hostile events slow the ingest of everyone else's?

    python -m bench.hostile_batch [--events 4000] [--poison-share 0.01] [--database sqlite|postgresql]

Prints ONE JSON object with two runs measured in this one invocation, each on a fresh
database (PostgreSQL by default: ``STREETWATCH_TEST_PG_URL``, or ``scripts/postgres.sh
start``), a real Mosquitto and one ingest worker:

* ``clean``: ``--events`` valid events;
* ``poisoned``: the same number, of which ``--poison-share`` carry a value the database
  cannot store (``Infinity`` in ``accuracy_m``, a NUL in ``detector_class``, a ``sequence``
  beyond 64 bits). Before the strict wire reader these reached the database and failed
  the whole batch, which was then stored one message per transaction.

The events are queued at the broker for the worker's session first, then the clock runs
from the worker's reconnect until every message is stored or refused.
``ratio_poisoned_over_clean`` near 1 means poison costs nothing beyond its own messages.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from server.db.migrate import upgrade  # noqa: E402
from server.db.models import Event  # noqa: E402
from server.db.session import make_engine  # noqa: E402
from server.ingest.worker import IngestWorker  # noqa: E402
from server.settings import IngestLimits, MqttSettings, ServerSettings  # noqa: E402
from streetwatch.events import utcnow  # noqa: E402
from streetwatch.topics import events_topic  # noqa: E402
from tests.server.factories import make_event  # noqa: E402
from tests.support.mosquitto import MosquittoBroker  # noqa: E402

POISONS = ("infinity", "nul", "bigint")


def make_payloads(count: int, poison_share: float, seed: int) -> tuple[list[tuple[str, bytes]], int]:
    """(topic, payload) of ``count`` events from 20 vans at spread-out spots; how many are poisoned."""
    rng = random.Random(seed)
    now = utcnow() - timedelta(minutes=30)
    poisoned_at = set(rng.sample(range(count), round(count * poison_share)))
    payloads = []
    for i in range(count):
        device = f"van-{i % 20:02d}"
        event = make_event(
            device_id=device,
            north_m=rng.uniform(0, 8000),
            east_m=rng.uniform(0, 8000),
            at=now + timedelta(milliseconds=i),
            event_id=uuid.UUID(int=rng.getrandbits(128)),
        )
        body = event.to_json().decode()
        if i in poisoned_at:
            body = _poison(body, POISONS[i % len(POISONS)])
        payloads.append((events_topic(device), body.encode()))
    return payloads, len(poisoned_at)


def _poison(body: str, how: str) -> str:
    if how == "infinity":
        return body.replace('"accuracy_m":3.0', '"accuracy_m":Infinity')
    raw: dict[str, Any] = json.loads(body)
    if how == "nul":
        raw["detector_class"] = "garbage\u0000overflow"
    else:
        raw["sequence"] = 2**70
    return json.dumps(raw)


def run(url: str, payloads: list[tuple[str, bytes]], workdir: Path) -> dict[str, Any]:
    upgrade(url)
    with MosquittoBroker(workdir / "broker") as broker:
        settings = ServerSettings(
            database_url=url,
            evidence_dir=str(workdir / "evidence"),
            mqtt=MqttSettings(port=broker.port),
            limits=IngestLimits(),
        )
        first = IngestWorker(settings, client_id="bench-hostile")
        first.start()
        assert first.wait_subscribed(20), "the worker did not subscribe"
        first.stop()  # the broker keeps the session and queues what follows for it
        _publish(broker.port, payloads)
        worker = IngestWorker(settings, client_id="bench-hostile")
        started = time.perf_counter()
        worker.start()
        deadline = started + 600
        while worker.stats.received < len(payloads) and time.perf_counter() < deadline:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        worker.stop()
    engine = make_engine(url)
    with engine.connect() as connection:
        stored = int(connection.scalar(select(func.count()).select_from(Event)) or 0)
    engine.dispose()
    return {
        "messages": len(payloads),
        "handled": worker.stats.received,
        "stored_events": stored,
        "refused": dict(worker.stats.rejected),
        "batches": worker.stats.batches,
        "seconds": round(elapsed, 2),
        "events_per_s": round(len(payloads) / elapsed, 1),
    }


def _publish(port: int, payloads: list[tuple[str, bytes]]) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(200)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for topic, payload in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def _database(kind: str, workdir: Path, name: str) -> tuple[str, Any]:
    """A fresh database URL and a function that drops it."""
    if kind == "sqlite":
        return f"sqlite:///{workdir / (name + '.db')}", lambda: None
    base = os.environ.get("STREETWATCH_TEST_PG_URL")
    if not base:
        script = str(REPO / "scripts" / "postgres.sh")
        started = subprocess.run(["bash", script, "start"], capture_output=True, text=True, check=True)
        for line in started.stdout.splitlines():
            if "STREETWATCH_TEST_PG_URL=" in line:
                base = line.split("=", 1)[1].strip().strip("'\"")
    if not base:
        raise SystemExit("no PostgreSQL: set STREETWATCH_TEST_PG_URL or run scripts/postgres.sh start")
    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return url.render_as_string(hide_password=False), drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--poison-share", type=float, default=0.01)
    parser.add_argument("--database", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()
    results: dict[str, Any] = {"database": args.database, "events": args.events}
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        for name, share in (("clean", 0.0), ("poisoned", args.poison_share)):
            payloads, poisoned = make_payloads(args.events, share, seed=7)
            url, drop = _database(args.database, Path(tmp), name)
            try:
                results[name] = {"poisoned": poisoned, **run(url, payloads, Path(tmp) / name)}
            finally:
                drop()
    ratio = results["poisoned"]["seconds"] / results["clean"]["seconds"]
    results["ratio_poisoned_over_clean"] = round(ratio, 2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()

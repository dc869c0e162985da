"""What the signboard register costs ingest: signboard events stored with it off, on, and on a street
where every sign is registered.

    python -m bench.sign_register_ingest [--events 2000] [--batch 400]

Prints ONE JSON object. Each run stores ``--events`` signboard ``new`` events (each its own
track, spread over a city district, with a real shop-sign crop in the evidence store) through
:class:`~server.ingest.process.IngestBatch` in batches of ``--batch`` (one transaction each), as
the MQTT worker does, into a fresh database (SQLite; PostgreSQL too when
``STREETWATCH_TEST_PG_URL`` is set, in a throw-away schema):

* ``off``: ``signs.enabled: false`` (the baseline: ingest as before the register);
* ``empty``: the register on, no sign registered (a city that has not registered its streets):
  one indexed lookup per event, no image read;
* ``registered``: a sign registered at every event's place, so every event reads and
  fingerprints its crop and is compared (the worst case; the events attach, no case opens).

Ratios are events/s against ``off`` in the same run (best of 3, the runs interleaved).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server.db.migrate import upgrade
from server.db.session import make_engine, session_factory
from server.evidence_store import EvidenceStore
from server.ingest.process import IngestBatch
from server.settings import ServerSettings
from server.signs.service import SignIn, add_sign
from streetwatch.events import ViolationEvent, utcnow

CROPS = Path(__file__).resolve().parents[1] / "tests" / "server" / "signs" / "crops"
LAT0, LON0 = 21.0, 105.8
M_PER_DEG = 111_195.0


def _events(count: int, crops: list[bytes], store: EvidenceStore, seed: int) -> list[ViolationEvent]:
    rng = random.Random(seed)
    side = math.sqrt(count) * 40.0  # a sign every ~40 m
    now = utcnow()
    shas = [store.put(c).sha256 for c in crops]
    events = []
    for i in range(count):
        north, east = rng.uniform(0, side), rng.uniform(0, side)
        k = i % len(crops)
        events.append(
            ViolationEvent.model_validate(
                {
                    "event_id": uuid.uuid4(),
                    "device_id": "bench",
                    "track_id": uuid.uuid4(),
                    "sequence": 0,
                    "lifecycle": "new",
                    "violation_type": "illegal_signboard",
                    "candidate": False,
                    "detector_class": "signboard",
                    "score": 0.7,
                    "box": (1, 1, 50, 50),
                    "frame_width": 640,
                    "frame_height": 480,
                    "observed_at": now - timedelta(seconds=count - i),
                    "first_seen_at": now - timedelta(seconds=count - i + 2),
                    "frames_seen": 4,
                    "position": {
                        "lat": LAT0 + north / M_PER_DEG,
                        "lon": LON0 + east / (M_PER_DEG * math.cos(math.radians(LAT0))),
                        "accuracy_m": 3.0,
                        "source": "gpx",
                    },
                    "model": {"name": "bench", "version": "1"},
                    "evidence": {
                        "frame_sha256": shas[k],
                        "frame_bytes": len(crops[k]),
                        "crop_sha256": shas[k],
                        "crop_bytes": len(crops[k]),
                        "captured_at": (now - timedelta(seconds=count - i)).isoformat(),
                    },
                }
            )
        )
    return events


def _run(
    url: str, mode: str, events: list[ViolationEvent], crops: list[bytes], evidence: str, batch: int
) -> float:
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    settings = ServerSettings(database_url=url, evidence_dir=evidence, signs={"enabled": mode != "off"})
    if mode == "registered":
        with sessions.begin() as session:
            for i, event in enumerate(events):
                assert event.position is not None
                where = SignIn(lat=event.position.lat, lon=event.position.lon, permit_id=f"B-{i}")
                add_sign(session, where, "bench", utcnow(), crops=[crops[i % len(crops)]])
    started = time.perf_counter()
    for start in range(0, len(events), batch):
        with sessions.begin() as session:
            ingest = IngestBatch(session, settings, utcnow())
            part = events[start : start + batch]
            ingest.lock(events=part)
            ingest.preload(part)
            for event in part:
                ingest.add_event(event)
            ingest.finish()
    elapsed = time.perf_counter() - started
    engine.dispose()
    return len(events) / elapsed


def _databases(tmp: Path) -> list[tuple[str, Any]]:
    """(name, a function giving a fresh empty database URL per call)."""
    counter = iter(range(1_000_000))
    out: list[tuple[str, Any]] = [("sqlite", lambda: f"sqlite:///{tmp / f'bench-{next(counter)}.db'}")]
    base = os.environ.get("STREETWATCH_TEST_PG_URL")
    if base:
        admin = create_engine(base, isolation_level="AUTOCOMMIT")

        def fresh_pg() -> str:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            with admin.connect() as connection:
                connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
            return url.render_as_string(hide_password=False)

        out.append(("postgresql", fresh_pg))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    crops = [p.read_bytes() for p in sorted(CROPS.glob("*.jpg"))]
    result: dict[str, Any] = {"events": args.events, "batch": args.batch}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        store = EvidenceStore(tmp / "evidence")
        events = _events(args.events, crops, store, seed=3)
        for name, fresh in _databases(tmp):
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for mode in ("off", "empty", "registered"):
                    rate = _run(fresh(), mode, events, crops, str(tmp / "evidence"), args.batch)
                    best[mode] = max(best.get(mode, 0.0), rate)
            result[name] = {
                "events_per_s": {k: round(v) for k, v in best.items()},
                "ratio_empty_vs_off": round(best["empty"] / best["off"], 3),
                "ratio_registered_vs_off": round(best["registered"] / best["off"], 3),
            }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

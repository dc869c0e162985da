"""Hostile payloads through the real ingest path (Mosquitto -> worker -> SQLite / PostgreSQL).

Each one was stored, converted or crashed a batch before; each must now be refused with a
reason counted in ``rejections``, while the valid messages around it are stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Case, Event, Evidence, Rejection
from server.evidence_store import EvidenceStore, sha256_hex
from server.ingest.orphans import prune_orphan_evidence
from server.ingest.process import ingest_event
from streetwatch.events import utcnow
from streetwatch.topics import events_topic, evidence_topic, telemetry_topic
from tests.server.factories import make_event, offset
from tests.server.test_ingest_evidence import declaring, png
from tests.server.test_ingest_worker import Publisher, counter, jpeg, settings_for, started, wait_for
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def publisher(broker: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(broker.port)
    yield pub
    pub.close()


def _rejections(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as session:
        return {r.reason: r.count for r in session.scalars(select(Rejection))}


def _poisoned(event_json: bytes, how: str) -> bytes:
    raw = json.loads(event_json)
    if how == "score":
        raw["score"] = "0.8"
    elif how == "candidate":
        raw["candidate"] = "yes"
    elif how == "box":
        raw["box"] = ["10", "20", "110", "220"]
    elif how == "unix_time":
        raw["observed_at"] = 1777622400
    elif how == "lon":
        raw["position"]["lon"] = True
    elif how == "nul":
        raw["detector_class"] = "over\u0000flow"
    elif how == "bigint":
        raw["sequence"] = 2**70
    elif how == "int32":
        raw["frames_seen"] = 2**31
    text = json.dumps(raw)
    if how == "infinity":
        text = text.replace('"accuracy_m": 3.0', '"accuracy_m": Infinity')
    if how == "utf16":
        return text.encode("utf-16")
    if how == "deep":
        return text[:-1].encode() + b', "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    return text.encode()


POISONS = [
    "score",
    "candidate",
    "box",
    "unix_time",
    "lon",
    "nul",
    "bigint",
    "int32",
    "infinity",
    "utf16",
    "deep",
]


def test_hostile_events_are_refused_as_malformed_and_valid_ones_flow(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    good = [make_event(device_id="van-01", north_m=200 * i) for i in range(3)]
    try:
        publisher.send(events_topic("van-01"), good[0].to_json())
        for how in POISONS:
            publisher.send(events_topic("van-01"), _poisoned(make_event(device_id="van-01").to_json(), how))
        publisher.send(events_topic("van-01"), good[1].to_json())
        publisher.send(events_topic("van-01"), good[2].to_json())
        wait_for(lambda: worker.stats.received >= len(POISONS) + 3)
    finally:
        worker.stop()
    assert _rejections(sessions) == {"malformed": len(POISONS)}
    with sessions() as session:
        assert sorted(session.scalars(select(Event.event_id))) == sorted(e.event_id for e in good)
        # No case anywhere but where the valid events were (the lon=true event would sit at lon 1.0).
        assert all(abs(c.lon - 121.47) < 0.01 for c in session.scalars(select(Case)))
        detail = session.get(Rejection, "malformed")
        assert detail is not None and "nests deeper" in detail.last_detail


def test_image_bombs_are_refused_before_decoding(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    bomb = declaring(jpeg(3), 30_000, 30_000)
    image = png()
    fine = jpeg(4)
    try:
        publisher.send(evidence_topic("van-01", sha256_hex(bomb)), bomb)
        publisher.send(evidence_topic("van-01", sha256_hex(image)), image)
        publisher.send(evidence_topic("van-01", sha256_hex(fine)), fine)
        wait_for(lambda: worker.stats.received >= 3)
    finally:
        worker.stop()
    assert _rejections(sessions) == {"malformed": 1, "undecodable_image": 1}
    with sessions() as session:
        assert list(session.scalars(select(Evidence.sha256))) == [sha256_hex(fine)]
        assert "30000x30000" in session.get(Rejection, "malformed").last_detail
        assert "PNG" in session.get(Rejection, "undecodable_image").last_detail
    files = [p.name for p in (tmp_path / "evidence").rglob("*") if p.is_file()]
    assert files == [f"{sha256_hex(fine)}.jpg"]


def test_orphan_images_have_a_per_device_quota(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    """Three images no event names fill van-01's quota; the fourth and fifth are refused and
    leave no file. Another box is unaffected, and once an event names two of van-01's images
    it may send two more."""
    worker = started(settings_for(migrated_url, broker, tmp_path, max_orphan_evidence=3))
    flood = [jpeg(10 + i) for i in range(5)]
    try:
        for data in flood:
            publisher.send(evidence_topic("van-01", sha256_hex(data)), data)
        other = jpeg(50)
        publisher.send(evidence_topic("van-02", sha256_hex(other)), other)
        wait_for(lambda: worker.stats.received >= 6)
        assert _rejections(sessions) == {"evidence_quota": 2}
        assert counter(sessions, Evidence)() == 4
        stored = [sha256_hex(d) for d in flood[:3]]
        named = make_event(
            device_id="van-01",
            evidence={
                "frame_sha256": stored[0],
                "frame_bytes": len(flood[0]),
                "crop_sha256": stored[1],
                "crop_bytes": len(flood[1]),
                "captured_at": "2026-05-01T08:00:00Z",
            },
        )
        publisher.send(events_topic("van-01"), named.to_json())
        wait_for(lambda: worker.stats.received >= 7)
        for data in flood[3:]:  # refused before; room again now
            publisher.send(evidence_topic("van-01", sha256_hex(data)), data)
        wait_for(lambda: worker.stats.received >= 9)
    finally:
        worker.stop()
    assert _rejections(sessions) == {"evidence_quota": 2}
    with sessions() as session:
        assert set(session.scalars(select(Evidence.sha256))) == {sha256_hex(d) for d in [*flood, other]}
        detail = session.get(Rejection, "evidence_quota")
        assert detail is not None and "van-01 already has 3 images no event names" in detail.last_detail
    files = {p.stem for p in (tmp_path / "evidence").rglob("*.jpg")}
    assert files == {sha256_hex(d) for d in [*flood, other]}


def test_the_clean_up_deletes_orphans_after_the_grace_period_and_keeps_named_images(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    settings = settings_for(migrated_url, broker, tmp_path, orphan_evidence_grace_s=600)
    worker = started(settings)
    early, late, orphan = jpeg(20), jpeg(21), jpeg(22)
    try:
        for data in (early, late, orphan):
            publisher.send(evidence_topic("van-01", sha256_hex(data)), data)
        named_now = make_event(
            device_id="van-01",
            evidence={
                "frame_sha256": sha256_hex(early),
                "frame_bytes": len(early),
                "crop_sha256": sha256_hex(early),
                "crop_bytes": len(early),
                "captured_at": "2026-05-01T08:00:00Z",
            },
        )
        publisher.send(events_topic("van-01"), named_now.to_json())
        wait_for(lambda: worker.stats.received >= 4)
    finally:
        worker.stop()
    store = EvidenceStore(settings.evidence_dir)
    with sessions.begin() as session:
        received = session.scalars(select(Evidence.received_at)).first()
    assert received is not None
    # Within the grace period nothing goes: the late image's event may still come.
    assert prune_orphan_evidence(sessions, store, settings.limits, received + timedelta(seconds=300)) == 0
    with sessions.begin() as session:  # ... and it does, 5 minutes later
        late_event = make_event(
            device_id="van-01",
            north_m=300,
            evidence={
                "frame_sha256": sha256_hex(late),
                "frame_bytes": len(late),
                "crop_sha256": sha256_hex(late),
                "crop_bytes": len(late),
                "captured_at": "2026-05-01T08:00:00Z",
            },
        )
        ingest_event(session, late_event, received + timedelta(seconds=300), settings)
    after_grace = received + timedelta(seconds=601)
    assert prune_orphan_evidence(sessions, store, settings.limits, after_grace) == 1
    with sessions() as session:
        rows = {e.sha256: e.referenced_at for e in session.scalars(select(Evidence))}
    assert set(rows) == {sha256_hex(early), sha256_hex(late)}
    assert all(at is not None for at in rows.values())  # found named: never looked at again
    files = {p.stem for p in (tmp_path / "evidence").rglob("*.jpg")}
    assert files == {sha256_hex(early), sha256_hex(late)}
    assert prune_orphan_evidence(sessions, store, settings.limits, after_grace + timedelta(days=1)) == 0


def test_future_dated_telemetry_cannot_move_other_devices_cases(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    """10 coverage points dated 2036 on the positions of another van's 10 cases moved all 10 to
    possibly_resolved; now the report is refused and counted, and the cases stay as they were."""
    settings = settings_for(migrated_url, broker, tmp_path)
    an_hour_ago = utcnow() - timedelta(hours=1)
    cases = []
    with sessions.begin() as session:
        for i in range(10):
            event = make_event(device_id="van-01", north_m=500 * i, at=an_hour_ago)
            cases.append(ingest_event(session, event, an_hour_ago, settings).case_id)
    in_2036 = datetime(2036, 1, 1, tzinfo=timezone.utc)
    points = []
    for i in range(10):
        lat, lon = offset(north_m=500 * i)
        points.append({"lat": lat, "lon": lon, "at": (in_2036 + timedelta(seconds=60 * i)).isoformat()})
    telemetry = {
        "device_id": "van-66",
        "at": utcnow().isoformat(),
        "period_s": 60,
        "uptime_s": 100,
        "frames": 0,
        "fps": 0,
        "coverage": points,
        "outbox": {"events": 0, "evidence": 0, "bytes": 0},
    }
    worker = started(settings)
    try:
        publisher.send(telemetry_topic("van-66"), json.dumps(telemetry).encode())
        wait_for(lambda: worker.stats.received >= 1)
    finally:
        worker.stop()
    with sessions() as session:
        states = [session.get(Case, case_id).state for case_id in cases]
        detail = session.get(Rejection, "malformed")
    assert states == ["new"] * 10
    assert detail is not None and "2036-01-01T00:00:00Z" in detail.last_detail
    assert "ahead of the server clock" in detail.last_detail

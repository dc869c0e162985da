"""The ingest worker against a real Mosquitto and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.db.migrate import upgrade
from server.db.models import Case, Device, Event, Evidence, Rejection
from server.db.session import make_engine, session_factory
from server.evidence_store import sha256_hex
from server.ingest.worker import IngestWorker
from server.settings import IngestLimits, MqttSettings, ServerSettings
from streetwatch.events import ConfigRef, utcnow
from streetwatch.messages import StatusMessage
from streetwatch.topics import events_topic, evidence_topic, status_topic
from tests.server.factories import make_event
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


def settings_for(url: str, broker: MosquittoBroker, tmp_path: Path, **limits: object) -> ServerSettings:
    return ServerSettings(
        database_url=url,
        evidence_dir=str(tmp_path / "evidence"),
        mqtt=MqttSettings(port=broker.port),
        limits=IngestLimits(batch_wait_s=0.02, **limits),  # type: ignore[arg-type]
    )


class Publisher:
    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker: MosquittoBroker) -> Iterator[Publisher]:
    pub = Publisher(broker.port)
    yield pub
    pub.close()


def started(settings: ServerSettings, client_id: str = "ingest-test") -> IngestWorker:
    worker = IngestWorker(settings, client_id=client_id)
    worker.start()
    assert worker.wait_subscribed(10), "the worker did not subscribe"
    return worker


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def counter(sessions: sessionmaker[Session], model: type) -> Callable[[], int]:
    def count() -> int:
        with sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    return count


def jpeg(seed: int = 0) -> bytes:
    image = np.full((48, 64, 3), seed % 255, dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    return data.tobytes()


def test_events_and_duplicates_make_one_event_and_one_case(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    try:
        first = make_event(device_id="van-01")
        second = make_event(device_id="van-02", north_m=8)
        far = make_event(device_id="van-02", north_m=300)
        for event in (first, first, second, first, far, second):
            publisher.send(events_topic(event.device_id), event.to_json())
        wait_for(lambda: worker.stats.received >= 6)
    finally:
        worker.stop()
    assert counter(sessions, Event)() == 3
    with sessions() as session:
        cases = session.scalars(select(Case).order_by(Case.id)).all()
        assert [(c.event_count, c.device_count) for c in cases] == [(2, 2), (1, 1)]
    assert worker.stats.duplicates == 3


def test_bad_messages_are_rejected_with_reasons_while_valid_ones_flow(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path, max_evidence_bytes=200_000))
    image = jpeg(1)
    good_event = make_event(device_id="van-01")
    spoofed = make_event(device_id="van-99")
    huge = json.loads(make_event().to_json())
    huge["detector_class"] = "x" * 70_000
    newer = json.loads(make_event().to_json()) | {"schema_version": 99}  # from a box upgraded first
    not_an_image = b"\xff\xd8\xff" + b"garbage" * 50
    try:
        publisher.send(events_topic("van-01"), b"{not json")
        publisher.send(events_topic("van-01"), json.dumps({"schema_version": 1, "event_id": "nope"}).encode())
        publisher.send(events_topic("van-01"), json.dumps(huge).encode())
        publisher.send(events_topic("van-01"), json.dumps(newer).encode())
        publisher.send(events_topic("van-01"), spoofed.to_json())  # van-01 speaking for van-99
        publisher.send(evidence_topic("van-01", sha256_hex(not_an_image)), not_an_image)
        publisher.send(evidence_topic("van-01", "0" * 64), image)  # hash does not match the bytes
        publisher.send(evidence_topic("van-01", sha256_hex(b"\0" * 300_000)), b"\0" * 300_000)
        publisher.send("streetwatch/v1/bad!device/events", good_event.to_json())
        publisher.send(events_topic("van-01"), good_event.to_json())
        publisher.send(evidence_topic("van-01", sha256_hex(image)), image)
        wait_for(lambda: worker.stats.received >= 11)
    finally:
        worker.stop()
    with sessions() as session:
        counts = {r.reason: r.count for r in session.scalars(select(Rejection))}
        spoof = session.get(Rejection, "spoofed")
        assert (
            spoof is not None and "van-99" in spoof.last_detail and spoof.last_topic == events_topic("van-01")
        )
        assert [e.event_id for e in session.scalars(select(Event))] == [good_event.event_id]
        evidence = session.scalars(select(Evidence)).one()
    assert counts == {
        "malformed": 2,
        "oversized": 2,
        "spoofed": 1,
        "undecodable_image": 1,
        "digest_mismatch": 1,
        "bad_topic": 1,
        "newer_schema": 1,
    }
    assert evidence.sha256 == sha256_hex(image) and (evidence.width, evidence.height) == (64, 48)
    assert (tmp_path / "evidence" / evidence.path).read_bytes() == image


def test_status_updates_the_device_and_a_last_will_takes_it_offline(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    armed = utcnow() - timedelta(minutes=5)
    online = StatusMessage(
        state="online",
        device_id="van-04",
        software_version="0.1.0",
        models=[{"name": "streetwatch-det", "version": "3"}],  # type: ignore[list-item]
        at=utcnow(),
    )
    will = online.model_copy(update={"state": "offline", "at": armed})  # armed at start, fired later
    try:
        publisher.send(status_topic("van-04"), online.to_json())
        wait_for(lambda: worker.stats.received >= 1)
        with sessions() as session:
            device = session.get(Device, "van-04")
            assert device is not None
            assert (device.status, device.software_version) == ("online", "0.1.0")
            assert device.models == [{"name": "streetwatch-det", "version": "3"}]
        # Restarting: online before its models are loaded; the server keeps the ones it knew.
        starting = online.model_copy(update={"phase": "starting", "models": [], "at": utcnow()})
        publisher.send(status_topic("van-04"), starting.to_json())
        wait_for(lambda: worker.stats.received >= 2)
        with sessions() as session:
            device = session.get(Device, "van-04")
            assert device is not None and device.status == "online"
            assert device.models == [{"name": "streetwatch-det", "version": "3"}]
        publisher.send(status_topic("van-04"), will.to_json())
        wait_for(lambda: worker.stats.received >= 3)
    finally:
        worker.stop()
    with sessions() as session:
        device = session.get(Device, "van-04")
        assert device is not None and device.status == "offline"


def test_the_status_says_which_configuration_a_box_runs_and_a_rollback_shows(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    worker = started(settings_for(migrated_url, broker, tmp_path))
    running = StatusMessage(
        state="online",
        device_id="van-05",
        software_version="0.1.0",
        models=[{"name": "streetwatch-det", "version": "3"}],  # type: ignore[list-item]
        config=ConfigRef(name="patrol-van", version="2"),
        at=utcnow(),
        phase="running",
    )

    def config_of_van() -> tuple[str | None, str | None]:
        with sessions() as session:
            device = session.get(Device, "van-05")
            assert device is not None
            return device.config_name, device.config_version

    try:
        publisher.send(status_topic("van-05"), running.to_json())
        wait_for(lambda: worker.stats.received >= 1)
        assert config_of_van() == ("patrol-van", "2")
        # Restarting: the box knows its configuration once its pipeline is built; until then, kept.
        starting = running.model_copy(
            update={"phase": "starting", "models": [], "config": None, "at": utcnow()}
        )
        publisher.send(status_topic("van-05"), starting.to_json())
        wait_for(lambda: worker.stats.received >= 2)
        assert config_of_van() == ("patrol-van", "2")
        # It came up on its own file (the installed one was unusable): the fleet page must not say 2.
        rolled_back = running.model_copy(update={"config": None, "at": utcnow()})
        publisher.send(status_topic("van-05"), rolled_back.to_json())
        wait_for(lambda: worker.stats.received >= 3)
        assert config_of_van() == (None, None)
        with sessions.begin() as session:  # a rollout's "done" recorded patrol-van 3
            device = session.get(Device, "van-05")
            assert device is not None
            device.config_name, device.config_version = "patrol-van", "3"
        older = json.loads(running.model_copy(update={"at": utcnow()}).to_json())
        del older["config"]  # a box older than event schema 6 does not say
        publisher.send(status_topic("van-05"), json.dumps(older).encode())
        wait_for(lambda: worker.stats.received >= 4)
        assert config_of_van() == ("patrol-van", "3")
    finally:
        worker.stop()


def test_unacknowledged_messages_survive_a_database_outage(
    db_url: str, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    """Until the database takes the batch, nothing is acked: a new worker gets every message."""
    settings = settings_for(db_url, broker, tmp_path)  # not migrated yet: every commit fails
    events = [make_event(device_id="van-01", north_m=100 * i) for i in range(5)]
    listener = AckListener(broker.port)
    worker = started(settings, client_id="ingest-outage")
    for event in events:
        publisher.send(events_topic("van-01"), event.to_json())
    wait_for(lambda: worker.stats.retries >= 1)
    worker.stop()
    assert worker.stats.received == 0
    assert listener.messages == 0, "the box was told an event is stored that the database never took"
    upgrade(db_url)
    engine = make_engine(db_url)
    sessions = session_factory(engine)
    worker = started(settings, client_id="ingest-outage")  # same persistent session
    try:
        wait_for(lambda: counter(sessions, Event)() == 5)
        wait_for(lambda: set(listener.events.get("van-01", [])) == {str(e.event_id) for e in events})
    finally:
        worker.stop()
        engine.dispose()
        listener.close()


def test_two_workers_with_concurrent_duplicates_make_exactly_one_case_per_spot(
    migrated_url: str, sessions, broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Two workers share the subscription; three vans report 40 spots, every event delivered twice.

    The spots are new to the database and reported round after round, so both workers hold
    first sightings of the same spots at the same time: without the per-cell locks some spots
    get two cases, and duplicate deliveries collide on the event id.
    """
    settings = settings_for(migrated_url, broker, tmp_path, batch_size=10)
    workers = [started(settings, client_id=f"ingest-{i}") for i in range(2)]
    publishers = [Publisher(broker.port) for _ in range(3)]
    base = make_event().observed_at
    spots, rounds = 40, 6
    events = [
        make_event(
            device_id=f"van-{r % 3}", north_m=200 * spot + r, at=base + timedelta(seconds=10 * r + spot)
        )
        for r in range(rounds)
        for spot in range(spots)
    ]
    try:
        for i, event in enumerate(events):
            for copy in range(2):
                publishers[(i + copy) % 3].client.publish(
                    events_topic(event.device_id), event.to_json(), qos=1
                )
        wait_for(lambda: sum(w.stats.received for w in workers) >= 2 * len(events), timeout=60)
    finally:
        for worker in workers:
            worker.stop()
        for pub in publishers:
            pub.close()
    assert all(w.stats.stored > 0 for w in workers), [w.stats for w in workers]
    assert sum(w.stats.stored for w in workers) == len(events)
    assert sum(w.stats.duplicates for w in workers) == len(events)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Event)) == len(events)
        assert session.scalars(select(Rejection)).all() == []
        cases = session.scalars(select(Case)).all()
        assert len(cases) == spots
        assert sorted((c.event_count, c.device_count) for c in cases) == [(rounds, 3)] * spots


def test_patrol_telemetry_marks_an_unseen_case_possibly_resolved(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    from server.ingest.process import ingest_event
    from streetwatch.messages import TelemetryMessage
    from streetwatch.topics import telemetry_topic
    from tests.server.factories import offset

    settings = settings_for(migrated_url, broker, tmp_path)
    an_hour_ago = utcnow() - timedelta(hours=1)
    with sessions.begin() as session:
        seen = ingest_event(session, make_event(device_id="van-01", at=an_hour_ago), an_hour_ago, settings)
        other = ingest_event(
            session, make_event(device_id="van-01", north_m=500, at=an_hour_ago), an_hour_ago, settings
        )
    now = utcnow()
    lat, lon = offset(north_m=6)
    telemetry = TelemetryMessage.model_validate(
        {
            "device_id": "van-07",
            "at": now,
            "period_s": 30,
            "uptime_s": 3600,
            "frames": 300,
            "fps": 10,
            "coverage": [{"lat": lat, "lon": lon, "at": now - timedelta(seconds=5)}],
            "outbox": {"events": 0, "evidence": 0, "bytes": 0},
        }
    )
    worker = started(settings)
    try:
        publisher.send(telemetry_topic("van-07"), telemetry.to_json())
        wait_for(lambda: worker.stats.received >= 1)
    finally:
        worker.stop()
    with sessions() as session:
        marked = session.get(Case, seen.case_id)
        untouched = session.get(Case, other.case_id)
        device = session.get(Device, "van-07")
        assert marked is not None and marked.state == "possibly_resolved"
        assert untouched is not None and untouched.state == "new"
        assert device is not None and device.last_lat == pytest.approx(lat)


def test_events_published_while_the_worker_is_down_arrive_after_its_restart(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    settings = settings_for(migrated_url, broker, tmp_path)
    started(settings).stop()  # the broker now holds a persistent session for this client id
    events = [make_event(device_id="van-02", north_m=50 * i) for i in range(5)]
    for event in events:
        publisher.send(events_topic("van-02"), event.to_json())
    worker = started(settings)
    try:
        wait_for(lambda: counter(sessions, Event)() == len(events))
    finally:
        worker.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # about the MQTT side: one database will do
def test_a_slow_decode_holds_up_neither_the_connection_nor_other_devices(
    migrated_url: str,
    sessions,
    broker: MosquittoBroker,
    publisher: Publisher,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One payload that takes longer to validate than the keepalive allows (a huge image, say)."""
    import threading

    import server.ingest.worker as worker_module
    from server.ingest.decoding import lane_of

    slow_device, fast_device = (
        "van-slow",
        next(
            f"van-{i}"
            for i in range(100)
            if lane_of(events_topic(f"van-{i}")) != lane_of(events_topic("van-slow"))
        ),
    )
    release, entered = threading.Event(), threading.Event()
    real_decode = worker_module.decode

    def decode(topic: str, payload: bytes, *args: object) -> object:
        if f"/{slow_device}/" in topic:
            entered.set()
            release.wait(30)
        return real_decode(topic, payload, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(worker_module, "decode", decode)
    settings = settings_for(migrated_url, broker, tmp_path)
    settings = settings.model_copy(update={"mqtt": MqttSettings(port=broker.port, keepalive_s=5)})
    worker = started(settings)
    try:
        publisher.send(events_topic(slow_device), make_event(device_id=slow_device).to_json())
        assert entered.wait(10)
        fast = [make_event(device_id=fast_device, north_m=100 * i) for i in range(5)]
        for event in fast:
            publisher.send(events_topic(fast_device), event.to_json())
        wait_for(lambda: counter(sessions, Event)() == len(fast), timeout=10)
        time.sleep(9)  # beyond 1.5 x keepalive: a blocked network thread would lose the connection
        assert worker._connection == 1, "the worker had to reconnect while a payload was validated"
        release.set()
        wait_for(lambda: counter(sessions, Event)() == len(fast) + 1)
    finally:
        release.set()
        worker.stop()


class AckListener:
    """A client on streetwatch/v1/+/acks, as the boxes would be, collecting what the server acked."""

    def __init__(self, port: int) -> None:
        from streetwatch.messages import StoredAck

        self.events: dict[str, list[str]] = {}
        self.evidence: dict[str, list[str]] = {}
        self.messages = 0
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"acks-{time.monotonic_ns()}")

        def on_message(_c: object, _u: object, message: mqtt.MQTTMessage) -> None:
            device = message.topic.split("/")[2]
            ack = StoredAck.from_json(message.payload)
            self.events.setdefault(device, []).extend(str(i) for i in ack.events)
            self.evidence.setdefault(device, []).extend(ack.evidence)
            self.messages += 1

        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("streetwatch/v1/+/acks", qos=1)
        self.client.loop_start()
        time.sleep(0.3)  # the SUBACK

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_the_server_acknowledges_what_it_stored_and_withholds_what_may_pass(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    """Stored, duplicate and refused-for-good are acked to the box; a full evidence disk is not."""
    settings = settings_for(migrated_url, broker, tmp_path)
    listener = AckListener(broker.port)
    stored, other_device = make_event(device_id="van-01"), make_event(device_id="van-02", north_m=400)
    malformed = json.loads(make_event(device_id="van-01", north_m=800).to_json())
    malformed["score"] = "0.8"  # a string where the schema says number: refused for good
    image, blocked = jpeg(1), jpeg(2)
    wrong_hash = sha256_hex(b"announced, not sent")
    # The evidence disk refuses the second image: its folder's name is taken by a file.
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / sha256_hex(blocked)[:2]).write_bytes(b"")
    worker = started(settings)
    try:
        publisher.send(evidence_topic("van-01", sha256_hex(image)), image)
        publisher.send(evidence_topic("van-01", sha256_hex(blocked)), blocked)
        publisher.send(evidence_topic("van-01", wrong_hash), image)
        publisher.send(events_topic("van-01"), stored.to_json())
        publisher.send(events_topic("van-01"), stored.to_json())  # a re-send: a duplicate
        publisher.send(events_topic("van-01"), json.dumps(malformed).encode())
        publisher.send(events_topic("van-02"), other_device.to_json())
        wait_for(lambda: worker.stats.received >= 7)
        wait_for(lambda: len(set(listener.events.get("van-01", []))) >= 2 and "van-02" in listener.events)
        assert sorted(set(listener.events["van-01"])) == sorted({str(stored.event_id), malformed["event_id"]})
        assert listener.events["van-02"] == [str(other_device.event_id)]
        assert sorted(set(listener.evidence["van-01"])) == sorted({sha256_hex(image), wrong_hash})
        assert listener.evidence.get("van-02", []) == []
        with sessions() as session:
            assert session.get(Event, stored.event_id) is not None  # acked only once committed
            refused = {r.reason: r.count for r in session.scalars(select(Rejection))}
        assert refused == {"storage_error": 1, "malformed": 1, "digest_mismatch": 1}

        # Space is back; the box sends the image it still holds again.
        (tmp_path / "evidence" / sha256_hex(blocked)[:2]).unlink()
        publisher.send(evidence_topic("van-01", sha256_hex(blocked)), blocked)
        wait_for(lambda: sha256_hex(blocked) in listener.evidence["van-01"])
        with sessions() as session:
            assert session.get(Evidence, sha256_hex(blocked)) is not None
    finally:
        worker.stop()
        listener.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # about the MQTT side: one database will do
def test_after_a_broker_restart_the_worker_subscribes_again_and_stores_at_once(
    migrated_url: str, sessions, broker: MosquittoBroker, tmp_path: Path
) -> None:
    """Mosquitto forgets $share subscriptions over a restart although it reports "session present"."""
    worker = started(settings_for(migrated_url, broker, tmp_path))
    try:
        broker.stop()
        time.sleep(8)  # long enough that a doubling backoff (1, 2, 4, 8 s ...) would overshoot
        broker.start()
        event = make_event(device_id="van-03")
        restarted = time.monotonic()
        pub = Publisher(broker.port)
        try:
            deadline = time.monotonic() + 20
            # A box publishing as soon as the broker is back: until the worker has subscribed again
            # no one takes the message, so keep offering it (as the box re-sends what is not acked).
            while counter(sessions, Event)() == 0 and time.monotonic() < deadline:
                pub.send(events_topic("van-03"), event.to_json())
                time.sleep(0.25)
        finally:
            pub.close()
        assert counter(sessions, Event)() == 1
        assert time.monotonic() - restarted < 5, "the worker took too long to subscribe again"
    finally:
        worker.stop()


def test_a_retained_event_is_refused_and_cleared_and_never_returns_on_subscribe(
    migrated_url: str, sessions, broker: MosquittoBroker, publisher: Publisher, tmp_path: Path
) -> None:
    left_before = make_event(device_id="van-01")  # retained while no worker ran
    publisher.client.publish(
        events_topic("van-01"), left_before.to_json(), qos=1, retain=True
    ).wait_for_publish(5)
    worker = started(settings_for(migrated_url, broker, tmp_path))
    live = make_event(device_id="van-01")
    honest = make_event(device_id="van-02")
    try:
        publisher.client.publish(events_topic("van-01"), live.to_json(), qos=1, retain=True).wait_for_publish(
            5
        )
        publisher.send(events_topic("van-02"), honest.to_json())
        wait_for(lambda: worker.stats.received >= 2)
        time.sleep(0.5)  # a retained message handed over at subscribe would have arrived by now
    finally:
        worker.stop()
    with sessions() as session:
        assert [e.event_id for e in session.scalars(select(Event))] == [honest.event_id]
        refused = session.get(Rejection, "retained")
        assert refused is not None and refused.count == 1 and refused.last_topic == events_topic("van-01")
    # The worker cleared what the box left: a new subscriber gets nothing retained.
    seen: list[bytes] = []
    probe = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="probe")
    probe.on_message = lambda _c, _u, message: seen.append(bytes(message.payload))
    probe.connect("127.0.0.1", broker.port)
    probe.subscribe(events_topic("van-01"), qos=1)
    probe.loop_start()
    try:
        time.sleep(1.0)
    finally:
        probe.disconnect()
        probe.loop_stop()
    assert seen == []

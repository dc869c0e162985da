"""One box must not be able to hurt another: the shipped broker config, started as written.

Each test plays a box holding its own valid credentials and trying what issue 11 found:
joining the ingest's shared subscription, taking over another client's session, reading
another box's commands, flooding the queue of an offline worker, leaving retained messages.
The "ingest" here is a plain client with exactly the worker's subscriptions
(``$share/<share_group>/<subscription(kind)>``), so the broker's rules are what is tested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from paho.mqtt.subscribeoptions import SubscribeOptions

from server.settings import MqttSettings
from streetwatch.broker_security import device_acls, device_role_name
from streetwatch.paths import deploy_dir
from streetwatch.topics import (
    acks_topic,
    command_replies_topic,
    commands_topic,
    events_topic,
    evidence_topic,
    subscription,
)
from tests.broker.clients import BrokerClient
from tests.support.shipped_broker import ShippedBroker, shipped_setting, start_shipped_broker

pytestmark = pytest.mark.broker

DEVICES = {"van-1": "pw-1", "van-2": "pw-2"}
INGEST = {"ingest-1": "pw-i1", "ingest-2": "pw-i2"}
GROUP = MqttSettings().share_group
WORKER_FILTERS = [
    f"$share/{GROUP}/{subscription(k)}"
    for k in ("events", "evidence", "status", "telemetry", "command_replies")
]
GRANTED = "Granted QoS 1"
#: PUBACK reasons that mean "the broker took it" (0x10: nobody subscribed right now).
ACCEPTED = ("Success", "No matching subscribers")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[ShippedBroker]:
    running = start_shipped_broker(tmp_path, DEVICES, INGEST)
    yield running
    running.stop()


def connect(
    broker: ShippedBroker, username: str, client_id: str | None = None, clean: bool = False
) -> BrokerClient:
    password = {**DEVICES, **INGEST}[username]
    client = BrokerClient(broker.port, username, password, client_id or username, clean=clean)
    assert client.connect(), f"{username} could not log in: {client.connect_reason}"
    return client


def worker(broker: ShippedBroker, username: str = "ingest-1") -> BrokerClient:
    client = connect(broker, username)
    assert client.subscribe(WORKER_FILTERS) == [GRANTED] * len(WORKER_FILTERS)
    return client


def test_a_box_cannot_join_the_ingest_shared_subscription_nor_read_others(broker: ShippedBroker) -> None:
    ingest = worker(broker)
    thief = connect(broker, "van-2")
    answers = thief.subscribe(
        [
            *WORKER_FILTERS,
            "streetwatch/v1/+/events",
            "#",
            "streetwatch/v1/van-1/commands",
            "streetwatch/v1/van-1/acks",
            "$share/other/streetwatch/v1/+/events",
        ]
    )
    assert all(a == "Not authorized" for a in answers), answers
    box = connect(broker, "van-1")
    try:
        for i in range(100):
            assert box.publish(events_topic("van-1"), json.dumps({"n": i}).encode()) in ACCEPTED
        assert ingest.wait_for(lambda got: len(got) >= 100, 10)
        time.sleep(0.3)
        assert sorted(json.loads(m.payload)["n"] for m in ingest.received()) == list(range(100))
        assert thief.received() == []
    finally:
        for c in (ingest, thief, box):
            c.close()


def test_a_box_cannot_take_over_another_clients_session(broker: ShippedBroker) -> None:
    ingest = worker(broker)
    ingest.close()  # offline; its persistent session keeps collecting
    for victim in ("ingest-1", "van-1"):
        intruder = BrokerClient(broker.port, "van-2", DEVICES["van-2"], victim)
        assert not intruder.connect(), f"van-2 logged in with client id {victim}"
        assert str(intruder.connect_reason) == "Not authorized"
        intruder.close()
    # A worker's own login cannot use another worker's client id either.
    other = BrokerClient(broker.port, "ingest-2", INGEST["ingest-2"], "ingest-1")
    assert not other.connect()
    other.close()

    box = connect(broker, "van-1")
    for i in range(50):
        assert box.publish(events_topic("van-1"), json.dumps({"n": i}).encode()) in ACCEPTED
    box.close()
    back = connect(broker, "ingest-1")  # resumes its session: everything queued is delivered
    try:
        assert back.wait_for(lambda got: len(got) >= 50, 10)
        assert sorted(json.loads(m.payload)["n"] for m in back.received()) == list(range(50))
    finally:
        back.close()


def test_a_command_for_an_offline_box_survives_a_broker_crash_and_reaches_only_it(
    broker: ShippedBroker,
) -> None:
    box = connect(broker, "van-1")
    assert box.subscribe([commands_topic("van-1"), acks_topic("van-1")]) == [GRANTED, GRANTED]
    box.close()
    server = connect(broker, "ingest-1")
    assert (
        server.publish(commands_topic("van-1"), b'{"command_id": "c-1", "type": "send_telemetry"}')
        == "Success"
    )
    assert server.publish(acks_topic("van-1"), b'{"events": [], "evidence": []}') in ACCEPTED
    server.close()
    thief = BrokerClient(broker.port, "van-2", DEVICES["van-2"], "van-1")
    assert not thief.connect()
    thief.close()
    # Persistence is written every autosave_interval; a crash after that loses nothing queued.
    time.sleep(float(shipped_setting("autosave_interval")) + 1.5)
    assert broker.proc is not None
    os.kill(broker.proc.pid, signal.SIGKILL)
    broker.proc.wait()
    broker.start()
    back = connect(broker, "van-1")
    try:
        assert back.wait_for(lambda got: len(got) >= 2, 10)
        assert sorted(m.topic for m in back.received()) == [acks_topic("van-1"), commands_topic("van-1")]
    finally:
        back.close()


def test_ingest_writes_commands_and_acks_a_box_writes_only_its_own_topics(broker: ShippedBroker) -> None:
    box = connect(broker, "van-1", clean=True)
    try:
        assert box.publish(events_topic("van-1"), b"{}") in ACCEPTED
        assert box.publish(evidence_topic("van-1", "0" * 64), b"\xff\xd8") in ACCEPTED
        assert box.publish(command_replies_topic("van-1"), b"{}") in ACCEPTED
        for topic in (
            events_topic("van-2"),
            commands_topic("van-1"),
            acks_topic("van-2"),
            command_replies_topic("van-2"),
        ):
            assert box.publish(topic, b"{}") not in ACCEPTED, topic
    finally:
        box.close()
    server = connect(broker, "ingest-2", clean=True)
    try:
        assert server.publish(commands_topic("van-2"), b"{}") in ACCEPTED
        assert server.publish(acks_topic("van-2"), b"{}") in ACCEPTED
    finally:
        server.close()


def test_a_box_replies_to_its_commands_and_only_the_ingest_reads_the_replies(broker: ShippedBroker) -> None:
    ingest = worker(broker)
    other = connect(broker, "van-2", clean=True)
    box = connect(broker, "van-1", clean=True)
    try:
        assert other.subscribe([command_replies_topic("van-1"), "streetwatch/v1/+/commands/reply"]) == [
            "Not authorized",
            "Not authorized",
        ]
        assert box.publish(command_replies_topic("van-1"), b'{"state": "done"}') in ACCEPTED
        assert ingest.wait_for(lambda got: any(m.topic == command_replies_topic("van-1") for m in got))
        assert other.received() == []
    finally:
        for client in (box, other, ingest):
            client.close()


def drained_bytes(client: BrokerClient, quiet_s: float = 0.6, timeout: float = 15.0) -> int:
    """Bytes delivered once the flow has stopped for ``quiet_s`` (the session's queue is drained)."""
    deadline = time.monotonic() + timeout
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = sum(len(m.payload) for m in client.received())
        if now != last:
            last, still_since = now, time.monotonic()
        elif now > 0 and time.monotonic() - still_since >= quiet_s:
            break
        time.sleep(0.05)
    return last


def test_an_offline_workers_queue_is_bounded_in_bytes(broker: ShippedBroker) -> None:
    limit = int(shipped_setting("max_queued_bytes"))
    packet = int(shipped_setting("max_packet_size"))
    assert 0 < limit <= 512 * 1024 * 1024
    ingest = worker(broker)
    ingest.close()
    box = connect(broker, "van-1", clean=True)
    chunk = os.urandom(packet - 1024)
    sent = 0
    try:
        while sent < limit * 1.3:  # a box flooding while the worker is away
            assert box.publish(evidence_topic("van-1", f"{sent:064x}"), chunk) in ACCEPTED
            sent += len(chunk)
    finally:
        box.close()
    back = connect(broker, "ingest-1")
    try:
        queued = drained_bytes(back)
        assert queued <= limit + packet, f"{queued} bytes were queued for one client; limit {limit}"
        assert queued >= limit / 2  # the bound, not a broken session, is what stopped it
    finally:
        back.close()


def test_retained_messages_reach_the_ingest_only_for_status(broker: ShippedBroker) -> None:
    """The worker's subscription options for the deployment: status retained, nothing else.

    Mosquitto 2.0 cannot refuse the retain flag per topic, and it hands retained messages to
    shared subscriptions on every (re)subscribe. Subscribing to events, evidence and telemetry
    with retain handling 2 keeps retained bombs away from every ingest restart, and the ingest
    may clear a retained message a box left (empty retained payload) where it sees one.
    """
    box = connect(broker, "van-1", clean=True)
    assert box.publish(events_topic("van-1"), b"bomb", retain=True) in ACCEPTED
    assert box.publish("streetwatch/v1/van-1/status", b'{"state": "online"}', retain=True) in ACCEPTED
    box.close()
    ingest = connect(broker, "ingest-1", clean=True)
    try:
        no_retained = SubscribeOptions(qos=1, retainHandling=2, retainAsPublished=True)
        others = WORKER_FILTERS[:2] + WORKER_FILTERS[3:]
        assert ingest.subscribe(others, no_retained) == [GRANTED] * len(others)
        assert ingest.subscribe(WORKER_FILTERS[2:3], SubscribeOptions(qos=1, retainAsPublished=True)) == [
            GRANTED
        ]
        assert ingest.wait_for(lambda got: len(got) >= 1, 5)
        time.sleep(0.3)
        assert [m.topic for m in ingest.received()] == ["streetwatch/v1/van-1/status"]
        assert ingest.publish(events_topic("van-1"), b"", retain=True) in ACCEPTED  # clear it
    finally:
        ingest.close()
    later = connect(broker, "ingest-2", clean=True)
    try:
        assert later.subscribe([f"$share/{GROUP}/{subscription('events')}"]) == [GRANTED]
        time.sleep(0.5)
        assert later.received() == [], "the retained event was cleared"
    finally:
        later.close()


def test_add_device_script_gives_a_new_box_the_same_rules_on_a_running_broker(tmp_path: Path) -> None:
    broker = start_shipped_broker(tmp_path, DEVICES, INGEST, admin=("broker-admin", "admin-pw"))
    script = deploy_dir() / "mosquitto" / "add-device.sh"
    try:
        result = subprocess.run(
            [
                str(script),
                "van-9",
                "-h",
                "127.0.0.1",
                "-p",
                str(broker.port),
                "-u",
                "broker-admin",
                "-P",
                "admin-pw",
            ],
            env={**os.environ, "MQTT_DEVICE_PASSWORD": "pw-9"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert broker.running, (broker.workdir / "mosquitto.stderr").read_text()
        saved = json.loads(broker.dynsec_file.read_text())
        role = next(r for r in saved["roles"] if r["rolename"] == device_role_name("van-9"))
        made = {(a["acltype"], a["topic"]) for a in role["acls"]}
        assert made == {(a["acltype"], a["topic"]) for a in device_acls("van-9")}
        client = next(c for c in saved["clients"] if c["username"] == "van-9")
        assert client["clientid"] == "van-9"

        box = BrokerClient(broker.port, "van-9", "pw-9", "van-9", clean=True)
        assert box.connect()
        assert box.subscribe([commands_topic("van-9"), commands_topic("van-1"), WORKER_FILTERS[0]]) == [
            GRANTED,
            "Not authorized",
            "Not authorized",
        ]
        box.close()
        assert not BrokerClient(broker.port, "van-9", "pw-9", "ingest-1", clean=True).connect()
    finally:
        broker.stop()

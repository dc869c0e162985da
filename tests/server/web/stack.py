"""A whole server for browser tests: real Mosquitto, SQLite, the ingest worker, uvicorn over HTTP.

Cases reach it the way a box sends them: evidence JPEGs on their topic, then the event, over
MQTT, through the ingest worker. Frames are the repository's shipped street photos
(datasets/samples), with the annotated frame and the crop made from them as an edge box would.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import paho.mqtt.client as mqtt
import uvicorn
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from demo.mosquitto import MosquittoBroker, free_port
from server.app import create_app
from server.auth import Role, create_user
from server.db.migrate import upgrade
from server.db.models import Case, Event, Evidence
from server.db.session import make_engine, session_factory
from server.evidence_store import sha256_hex
from server.ingest.worker import IngestWorker
from server.settings import ApiSettings, ConsoleSettings, IngestLimits, MqttSettings, ServerSettings
from server.web.live import SHUTDOWN_GRACE_S
from server.web.serving import HttpServer
from streetwatch.events import EventAttributes, ObjectPosition, ViolationEvent
from streetwatch.topics import events_topic, evidence_topic
from tests.server.factories import make_event, offset

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "datasets" / "samples" / "images"
PASSWORD = "correct-horse-7"
#: Everyone the tests sign in as; box7 is an edge box's account.
USERS = {"rita": Role.reviewer, "vic": Role.viewer, "ada": Role.admin, "box7": Role.device}


#: Every console of a module's tests signs in from 127.0.0.1 within minutes: more than the attempts
#: per address a real server allows in its window (the limit has its own tests, tests/server/api).
TEST_API = ApiSettings(login_attempts_per_address=500)


@dataclass(frozen=True)
class Sighting:
    """One case to send: a shipped photo, what the box saw in it and where."""

    photo: str
    violation_type: str
    detector_class: str
    box: tuple[float, float, float, float]  # in the photo's pixels: where the evidence shows the object
    north_m: float
    device_id: str = "van-01"
    candidate: bool = False
    #: The event's own box, when the object had moved on from its evidence frame (a passing van).
    moved_to: tuple[float, float, float, float] | None = None
    #: The box placed the object itself this far north of its camera (event schema 4), driving north...
    placed_ahead_m: float | None = None
    #: ...and this far east of its route (to its right).
    placed_right_m: float = 0.0
    #: What a second stage on the box said (event schema 2), e.g. a truck's load.
    attributes: dict[str, Any] | None = None


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met within {timeout} s")


def _jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return data.tobytes()


def evidence_images(
    photo: Path, box: tuple[float, float, float, float], label: str
) -> tuple[bytes, bytes, bytes]:
    """(annotated frame, crop, clean frame) of ``photo``, as the edge's evidence writer makes them."""
    clean = cv2.imread(str(photo))
    assert clean is not None, photo
    x1, y1, x2, y2 = (int(v) for v in box)
    annotated = clean.copy()
    cv2.rectangle(annotated, (x1, y1), (x2, y2), (0, 0, 255), 3)
    cv2.putText(annotated, label, (x1 + 4, max(20, y1 - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 0, 255), 2)
    crop = clean[max(0, y1) : y2, max(0, x1) : x2]
    return _jpeg(annotated), _jpeg(crop), _jpeg(clean)


class Stack:
    """Broker, database, ingest worker and HTTP server, all started for real; :meth:`close` stops them."""

    def __init__(self, workdir: Path, console: ConsoleSettings | None = None) -> None:
        self.workdir = workdir
        self.broker = MosquittoBroker(workdir / "broker")
        self.broker.start()
        self.settings = ServerSettings(
            database_url=f"sqlite:///{workdir / 'streetwatch.db'}",
            evidence_dir=str(workdir / "evidence"),
            mqtt=MqttSettings(port=self.broker.port, client_id="ingest-console-test"),
            limits=IngestLimits(batch_wait_s=0.02),
            console=console or ConsoleSettings(live_poll_s=0.3, teams=["north-grid", "river-team"]),
            api=TEST_API,
        )
        upgrade(self.settings.database_url)
        self.engine = make_engine(self.settings.database_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.tokens: dict[str, str] = {}
        with self.sessions() as session:
            now = datetime.now(timezone.utc)
            for name, role in USERS.items():
                self.tokens[name] = create_user(session, name, role, now, password=PASSWORD).token
            session.commit()
        self.worker = IngestWorker(self.settings)
        self.worker.start()
        assert self.worker.wait_subscribed(15), "the ingest worker did not subscribe"
        self.port = free_port("127.0.0.1")
        self.http = HttpServer(
            uvicorn.Config(
                create_app(self.settings),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
            )
        )
        self.thread = threading.Thread(target=self.http.run, name="http", daemon=True)
        self.thread.start()
        wait_for(lambda: self.http.started, 15, "uvicorn start")
        self.publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"box-sim-{uuid.uuid4().hex[:8]}")
        self.publisher.connect("127.0.0.1", self.broker.port)
        self.publisher.loop_start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def send(self, sighting: Sighting, at: datetime | None = None) -> ViolationEvent:
        """Publish the sighting's evidence and event over MQTT, as a box's outbox would."""
        photo = SAMPLES / sighting.photo
        frame, crop, clean = evidence_images(photo, sighting.box, sighting.detector_class)
        image = cv2.imread(str(photo))
        assert image is not None, photo
        height, width = image.shape[:2]
        seen = at or datetime.now(timezone.utc) - timedelta(seconds=30)
        evidence: dict[str, Any] = {
            "frame_sha256": sha256_hex(frame),
            "frame_bytes": len(frame),
            "crop_sha256": sha256_hex(crop),
            "crop_bytes": len(crop),
            "clean_sha256": sha256_hex(clean),
            "clean_bytes": len(clean),
            # A moved object's evidence frame came before the event's frame.
            "captured_at": seen - timedelta(seconds=2) if sighting.moved_to else seen,
            "box": sighting.box,
        }
        for data in (frame, crop, clean):
            self._publish(evidence_topic(sighting.device_id, sha256_hex(data)), data)
        event = make_event(
            device_id=sighting.device_id,
            violation_type=sighting.violation_type,
            detector_class=sighting.detector_class,
            candidate=sighting.candidate,
            north_m=sighting.north_m,
            at=seen,
            box=sighting.moved_to or sighting.box,
            frame_width=width,
            frame_height=height,
            evidence=evidence,
            model={"name": "streetwatch-det", "version": "1.5.0"},
        )
        if sighting.attributes is not None:
            said = EventAttributes.model_validate(sighting.attributes)
            event = event.model_copy(update={"attributes": said})
        if sighting.placed_ahead_m is not None:
            lat, lon = offset(sighting.north_m + sighting.placed_ahead_m, sighting.placed_right_m)
            ahead = sighting.placed_ahead_m
            place = ObjectPosition(lat=lat, lon=lon, accuracy_m=6.0, along_m=ahead)
            assert event.position is not None
            heading_north = event.position.model_copy(update={"heading_deg": 0.0})
            event = event.model_copy(update={"object_position": place, "position": heading_north})
        self._publish(events_topic(sighting.device_id), event.to_json())
        return event

    def send_cases(
        self, *sightings: Sighting, what: str, at: Sequence[datetime] = (), timeout: float = 20.0
    ) -> list[int]:
        """Send the sightings (seen ``at`` these times, else as :meth:`send`), wait until each has opened
        a new case, and return the case ids in the sightings' order.

        Most tests need cases of their own to work on: this is the send, the wait and the look-up they
        would each repeat, with each case found by its sighting's event, not by which id is newest.
        """
        before = self.count_cases()
        times: Sequence[datetime | None] = at or [None] * len(sightings)
        sent = [self.send(one, at=seen).event_id for one, seen in zip(sightings, times, strict=True)]
        cases: dict[uuid.UUID, int] = {}

        def opened() -> bool:
            with self.sessions() as session:
                rows = session.execute(select(Event.event_id, Event.case_id).where(Event.event_id.in_(sent)))
                cases.update((event_id, case_id) for event_id, case_id in rows if case_id is not None)
            return self.count_cases() == before + len(sent) and all(event_id in cases for event_id in sent)

        wait_for(opened, timeout, what)
        return [cases[event_id] for event_id in sent]

    def act(self, case_id: int, username: str = "ada", **body: Any) -> None:
        """What another dispatcher does meanwhile: one action on the case through the REST API, as
        ``username``, checked to be done."""
        done = httpx.post(
            f"{self.url}/api/v1/cases/{case_id}/actions",
            json=body,
            headers={"Authorization": f"Bearer {self.tokens[username]}"},
        )
        assert done.status_code == 200, done.text

    def _publish(self, topic: str, payload: bytes) -> None:
        self.publisher.publish(topic, payload, qos=1).wait_for_publish(10)

    def count_cases(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Case)) or 0)

    def count_evidence(self) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Evidence)) or 0)

    def close(self) -> None:
        self.publisher.disconnect()
        self.publisher.loop_stop()
        self.http.should_exit = True
        self.thread.join(15)
        self.worker.stop()
        self.engine.dispose()
        self.broker.stop()

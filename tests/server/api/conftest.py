"""Fixtures for API tests: an app on a real database (SQLite and PostgreSQL), users of every role.

Data is seeded through the ingest's own ``ingest_event`` so cases are made by
the real matching, exactly as the MQTT worker would make them.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.auth import Role, create_user
from server.db.models import Rollout
from server.evidence_store import EvidenceStore
from server.fleet.rollouts import advance
from server.ingest.process import IngestBatch, IngestOutcome, ingest_event
from server.settings import ServerSettings
from streetwatch.events import ViolationEvent

#: A fixed "now" for seeded data, so filters on time give the same rows on every run.
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=timezone.utc)
#: A street corner in Hanoi; seeded events sit around it.
BASE_LAT, BASE_LON = 21.0285, 105.8542


@dataclass
class Api:
    """A running app and a token per role (``tokens["viewer"]`` ...)."""

    client: TestClient
    sessions: sessionmaker[Session]
    settings: ServerSettings
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def get(self, path: str, role: str | None = "viewer", **kwargs: Any) -> httpx.Response:
        return self.client.get(path, headers=self.headers(role), **kwargs)

    def post(self, path: str, role: str | None = "reviewer", **kwargs: Any) -> httpx.Response:
        return self.client.post(path, headers=self.headers(role), **kwargs)


@pytest.fixture
def api(migrated_url: str, tmp_path: Path) -> Iterator[Api]:
    settings = ServerSettings(database_url=migrated_url, evidence_dir=str(tmp_path / "evidence"))
    app = create_app(settings)
    sessions: sessionmaker[Session] = app.state.sessions
    tokens: dict[str, str] = {}
    with sessions() as session:
        for role in Role:
            tokens[role.value] = create_user(session, f"{role.value}-1", role, NOW).token
        session.commit()
    with TestClient(app) as client:
        yield Api(client=client, sessions=sessions, settings=settings, tokens=tokens)


def offset_position(metres_north: float, metres_east: float) -> tuple[float, float]:
    """(lat, lon) this many metres from the base corner (flat-earth, fine at this scale)."""
    lat = BASE_LAT + metres_north / 111_320.0
    lon = BASE_LON + metres_east / (111_320.0 * np.cos(np.radians(BASE_LAT)))
    return float(lat), float(lon)


def jpeg(seed: int) -> bytes:
    """A small real JPEG whose bytes differ per seed."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(".jpg", image)
    assert ok
    return buffer.tobytes()


def make_event(
    *,
    violation_type: str = "garbage_overflow",
    device_id: str = "box-1",
    observed_at: datetime = NOW,
    north_m: float = 0.0,
    east_m: float = 0.0,
    track_id: uuid.UUID | None = None,
    score: float = 0.8,
    position: bool = True,
    source: str = "gpx",
    evidence: tuple[bytes, bytes] | None = None,
    clean: bytes | None = None,
    detector_class: str = "overflow",
    box: tuple[float, float, float, float] = (10, 10, 50, 40),
    frame_size: tuple[int, int] = (64, 48),
    evidence_box: tuple[float, float, float, float] | None = None,
    object_position: dict[str, float] | None = None,
) -> ViolationEvent:
    lat, lon = offset_position(north_m, east_m)
    raw: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "device_id": device_id,
        "track_id": str(track_id or uuid.uuid4()),
        "sequence": 0,
        "lifecycle": "new",
        "violation_type": violation_type,
        "candidate": False,
        "detector_class": detector_class,
        "score": score,
        "box": list(box),
        "frame_width": frame_size[0],
        "frame_height": frame_size[1],
        "observed_at": observed_at.isoformat(),
        "first_seen_at": (observed_at - timedelta(seconds=5)).isoformat(),
        "frames_seen": 5,
        "position": {"lat": lat, "lon": lon, "accuracy_m": 4.0, "source": source} if position else None,
        "model": {"name": "test-model", "version": "1"},
    }
    if object_position is not None:
        raw["object_position"] = object_position
    if evidence is not None:
        frame, crop = evidence
        raw["evidence"] = {
            "frame_sha256": hashlib.sha256(frame).hexdigest(),
            "frame_bytes": len(frame),
            "crop_sha256": hashlib.sha256(crop).hexdigest(),
            "crop_bytes": len(crop),
            "captured_at": observed_at.isoformat(),
        }
        if evidence_box is not None:  # schema 3: the object in the evidence frame
            raw["evidence"]["box"] = list(evidence_box)
        if clean is not None:
            raw["evidence"] |= {"clean_sha256": hashlib.sha256(clean).hexdigest(), "clean_bytes": len(clean)}
    return ViolationEvent.model_validate(raw)


def ingest(api: Api, *events: ViolationEvent, now: datetime = NOW) -> list[IngestOutcome]:
    """Store events through the ingest's own code path, one transaction each (as redeliveries would)."""
    outcomes = []
    for event in events:
        with api.sessions.begin() as session:
            outcomes.append(ingest_event(session, event, now, settings=api.settings))
    return outcomes


def store_evidence(api: Api, data: bytes, device_id: str = "box-1", now: datetime = NOW) -> str:
    """Put an image in the app's evidence store and record it, as the ingest does; return its SHA-256."""
    stored = EvidenceStore(api.settings.evidence_dir).put(data)
    with api.sessions.begin() as session:
        batch = IngestBatch(session, api.settings, now)
        batch.add_evidence(stored, device_id)
        batch.finish()
    return stored.sha256


def record_rejections(api: Api, reason: str, count: int, now: datetime = NOW) -> None:
    with api.sessions.begin() as session:
        batch = IngestBatch(session, api.settings, now)
        for _ in range(count):
            batch.reject(reason, "streetwatch/v1/box-1/events", f"test {reason}")
        batch.finish()


def decide(api: Api, case_id: int, confirm: bool) -> None:
    """A reviewer confirms the case or rejects it as no violation (what live precision counts)."""
    body = {"action": "confirm"} if confirm else {"action": "reject", "reject_reason": "not_a_violation"}
    answer = api.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert answer.status_code == 200, answer.text


def advance_rollout(api: Api, settings: ServerSettings, minutes: int) -> Rollout:
    """Let the fleet's rollout step run ``minutes`` after NOW; the (one) rollout as it stands then."""
    with api.sessions.begin() as session:
        advance(session, settings, NOW + timedelta(minutes=minutes))
    with api.sessions() as session:
        rollout = session.query(Rollout).one()
        session.expunge(rollout)
        return rollout

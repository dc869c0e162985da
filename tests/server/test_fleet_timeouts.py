"""When silence halts a rollout: counted from the command, the last reply, or the box coming back
online; never while the box says it is offline (its command waits at the broker). SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import Device, Rollout
from server.fleet.rollouts import Selection, advance, stage
from server.settings import FleetSettings, ServerSettings
from tests.fleet.releases_support import MODEL, signed_registry

T0 = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)
TIMEOUT_S = 600


def _at(sessions: sessionmaker[Session], settings: ServerSettings, minutes: float) -> str:
    with sessions.begin() as session:
        advance(session, settings, T0 + timedelta(minutes=minutes))
    with sessions() as session:
        return session.scalars(select(Rollout)).one().state


def _status(sessions: sessionmaker[Session], status: str, minutes: float) -> None:
    with sessions.begin() as session:
        device = session.get(Device, "van-01")
        assert device is not None
        device.status, device.status_at = status, T0 + timedelta(minutes=minutes)


def test_an_offline_box_does_not_halt_the_rollout_until_it_is_back_and_silent(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    registry, public, _ = signed_registry(tmp_path)
    fleet = FleetSettings(model_registry=str(registry), public_key=str(public), reply_timeout_s=TIMEOUT_S)
    settings = ServerSettings(database_url="sqlite://", fleet=fleet)
    with sessions.begin() as session:
        models = [{"name": MODEL, "version": "1.0.0"}]
        session.add(
            Device(device_id="van-01", first_seen_at=T0, last_seen_at=T0, status="online", models=models)
        )
        stage(session, settings, "model", MODEL, "2.0.0", Selection(devices=("van-01",)), T0)
    assert _at(sessions, settings, 0) == "running"  # sent at T0
    _status(sessions, "offline", 1)  # the van parks for the night
    assert _at(sessions, settings, 9 * 60) == "running"  # nine hours later: still waiting for it
    _status(sessions, "online", 9 * 60 + 1)  # back in the morning: the clock starts again
    assert _at(sessions, settings, 9 * 60 + 5) == "running"
    assert _at(sessions, settings, 9 * 60 + 12) == "halted"  # online and silent for 11 minutes
    with sessions() as session:
        reason = session.scalars(select(Rollout)).one().halted_reason
    assert reason == "van-01 timeout: no reply for 600 s (last step: none)"

"""What a batch learned about devices and refused messages, written once at its end.

Rows are written in sorted key order (devices by id, rejections by reason), so
concurrent workers lock them in one order and cannot deadlock on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.db.models import Device, DeviceStatus, Rejection
from streetwatch.events import ViolationEvent
from streetwatch.messages import StatusMessage, TelemetryMessage


@dataclass
class _DeviceSeen:
    last_seen_at: datetime
    events: int = 0
    position: tuple[float, float, datetime] | None = None
    status: str | None = None
    status_at: datetime | None = None
    software_version: str | None = None
    models: list[Any] | None = None
    # The configuration the box says it runs: (name, version), None for its own file. Only from
    # boxes that say (event schema 6 and later); older ones leave what their rollouts recorded.
    config: tuple[str, str] | None = None
    config_said: bool = False
    health: dict[str, Any] | None = None
    health_at: datetime | None = None


class DeviceUpdates:
    """Last seen times, event counts, positions and statuses of the devices a batch heard from."""

    def __init__(self) -> None:
        self._seen: dict[str, _DeviceSeen] = {}

    def heard_from(self, device_id: str, at: datetime, now: datetime) -> _DeviceSeen:
        at = min(at, now)  # a clock running ahead must not make a device look seen in the future
        seen = self._seen.get(device_id)
        if seen is None:
            seen = self._seen[device_id] = _DeviceSeen(last_seen_at=at)
        else:
            seen.last_seen_at = max(seen.last_seen_at, at)
        return seen

    def saw_event(self, event: ViolationEvent, now: datetime) -> None:
        seen = self.heard_from(event.device_id, event.observed_at, now)
        seen.events += 1
        if event.position is not None:
            self.position(event.device_id, event.position.lat, event.position.lon, event.observed_at, now)

    def position(self, device_id: str, lat: float, lon: float, at: datetime, now: datetime) -> None:
        # A fix from a clock running ahead would otherwise outrank every true fix after it.
        at = min(at, now)
        seen = self._seen[device_id]
        if seen.position is None or at >= seen.position[2]:
            seen.position = (lat, lon, at)

    def status(self, status: StatusMessage, now: datetime) -> None:
        """Online / offline with versions. Ordered by the server's receive time, not ``status.at``:
        a last will carries the time it was armed, older than the "online" it follows."""
        seen = self.heard_from(status.device_id, now, now)
        seen.status = status.state
        seen.status_at = now
        seen.software_version = status.software_version
        if status.phase != "starting" or status.models:
            # A starting box has not loaded its models yet: keep the ones it reported last.
            seen.models = [m.model_dump() for m in status.models]
            if status.state == "online" and "config" in status.model_fields_set:
                # A last will is armed at connect, before the pipeline knows its configuration.
                seen.config_said = True
                seen.config = (status.config.name, status.config.version) if status.config else None

    def telemetry(self, message: TelemetryMessage, now: datetime) -> None:
        """Keep the newest report (by the box's own ``at``: reports can arrive out of order after a
        reconnect) without its coverage track, which lives in ``telemetry_points``."""
        seen = self.heard_from(message.device_id, message.at, now)
        at = min(message.at, now)  # a report "from the future" must not outrank the ones after it
        if seen.health_at is None or at >= seen.health_at:
            seen.health = message.model_dump(mode="json", exclude={"coverage", "device_id", "at"})
            seen.health_at = at

    def write(self, session: Session, now: datetime) -> None:
        ids = sorted(self._seen)
        if not ids:
            return
        insert_ignore(
            session,
            Device,
            [
                {
                    "device_id": device_id,
                    "first_seen_at": self._seen[device_id].last_seen_at,
                    "last_seen_at": self._seen[device_id].last_seen_at,
                    "status": DeviceStatus.unknown.value,
                    "event_count": 0,
                }
                for device_id in ids
            ],
        )
        rows = session.scalars(
            select(Device).where(Device.device_id.in_(ids)).order_by(Device.device_id).with_for_update()
        )
        for device in rows:
            _apply(device, self._seen[device.device_id])
        self._seen.clear()


def _apply(device: Device, seen: _DeviceSeen) -> None:
    device.last_seen_at = max(device.last_seen_at, seen.last_seen_at)
    device.event_count += seen.events
    if seen.position is not None and (
        device.last_position_at is None or seen.position[2] >= device.last_position_at
    ):
        device.last_lat, device.last_lon, device.last_position_at = seen.position
    newer = seen.status_at is not None and (device.status_at is None or seen.status_at >= device.status_at)
    if seen.status is not None and newer:
        device.status = seen.status
        device.status_at = seen.status_at
        if seen.status == DeviceStatus.online.value:  # it got through the broker: no refusal now
            device.link_problem = device.link_problem_since = None
        device.software_version = seen.software_version
        if seen.models is not None:
            device.models = seen.models
        if seen.config_said:  # a rollback on the box shows here, not only a rollout's "done"
            device.config_name, device.config_version = seen.config or (None, None)
    if seen.health_at is not None and (device.health_at is None or seen.health_at >= device.health_at):
        device.health = seen.health
        device.health_at = seen.health_at


@dataclass
class _Counted:
    count: int = 0
    last_topic: str = ""
    last_detail: str = ""


class RejectionCounts:
    """Refused messages of a batch, by reason, added to the ``rejections`` counters."""

    def __init__(self) -> None:
        self._counts: dict[str, _Counted] = {}

    def add(self, reason: str, topic: str, detail: str) -> None:
        counted = self._counts.setdefault(reason, _Counted())
        counted.count += 1
        counted.last_topic = topic[:255]
        counted.last_detail = detail[:2000]

    def write(self, session: Session, now: datetime) -> None:
        for reason in sorted(self._counts):
            counted = self._counts[reason]
            insert_ignore(
                session,
                Rejection,
                [{"reason": reason, "count": 0, "last_at": now, "last_topic": "", "last_detail": ""}],
            )
            session.execute(
                update(Rejection)
                .where(Rejection.reason == reason)
                .values(
                    count=Rejection.count + counted.count,
                    last_at=now,
                    last_topic=counted.last_topic,
                    last_detail=counted.last_detail,
                )
            )
        self._counts.clear()


def insert_ignore(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """INSERT that skips rows whose primary key exists (PostgreSQL and SQLite)."""
    dialect = session.get_bind().dialect.name
    factory = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(factory(model).on_conflict_do_nothing(), rows)

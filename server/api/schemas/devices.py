"""Edge boxes as the server last heard of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DeviceBase(BaseModel):
    device_id: str = Field(description="The box's id, as in its config and MQTT topics.")


class DevicePublic(DeviceBase):
    model_config = ConfigDict(from_attributes=True)

    status: str = Field(description="online / offline (from the retained MQTT status) or unknown.")
    status_at: datetime | None = Field(description="When the status last changed.")
    first_seen_at: datetime = Field(description="First message from this box.")
    last_seen_at: datetime = Field(description="Latest message from this box.")
    software_version: str | None = Field(description="StreetWatch version the box reported.")
    models: list[Any] | None = Field(description="Detector models (name, version) the box reported.")
    last_lat: float | None = Field(description="Latest known latitude (WGS 84).")
    last_lon: float | None = Field(description="Latest known longitude (WGS 84).")
    last_position_at: datetime | None = Field(description="When that position was taken.")
    event_count: int = Field(description="Events stored from this box.")
    health: dict[str, Any] | None = Field(
        default=None,
        description="The newest telemetry report without its position track: fps, frames, uptime_s, "
        "outbox (events, evidence, bytes, oldest_at), dropped (by reason), cpu_temp_c, gpu_temp_c. "
        "Field meanings: docs/mqtt.md.",
    )
    health_at: datetime | None = Field(default=None, description="The box's time of that report.")

"""The fleet: boxes with their versions and health, rollouts with their progress."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class BoxRollout(BaseModel):
    """The box's part in its latest rollout."""

    rollout_id: int
    kind: str
    name: str
    version: str
    rollout_state: str = Field(description="running, halted or done.")
    state: str = Field(description="pending, sent, accepted, progress, done, failed, timeout or cancelled.")
    step: str | None = Field(description="The last step the box reported (download, verify, probe, swap...).")
    reason: str | None = Field(description="Why it failed or timed out.")
    previous_version: str | None


class BoxView(BaseModel):
    device_id: str
    group: str | None = Field(description="Fleet group (streetwatch fleet group).")
    status: str = Field(description="online / offline / unknown (retained MQTT status).")
    last_seen_at: datetime
    software_version: str | None
    models: dict[str, str] = Field(
        description="Model name -> version the box runs (status and done replies)."
    )
    config: str | None = Field(description="'name version' of the configuration it last applied.")
    health: Literal["ok", "silent", "offline", "update_failed", "refused"] = Field(
        description="ok; silent: nothing heard for fleet status' stale time; offline: said so; "
        "update_failed: its latest rollout step failed or timed out; refused: the box says the broker "
        "refuses its login (link_problem)."
    )
    link_problem: str | None = Field(
        description="What the box reported over HTTP while the broker refused it; null: nothing."
    )
    link_problem_since: datetime | None
    fps: float | None = Field(description="Frames per second in its newest telemetry.")
    cpu_temp_c: float | None
    gpu_temp_c: float | None
    outbox_events: int | None = Field(description="Events waiting on its disk for the server's ack.")
    rollout: BoxRollout | None


class LinkReport(BaseModel):
    """A box's word on its broker link, sent over HTTP because MQTT is what fails."""

    model_config = ConfigDict(extra="forbid")

    problem: str | None = Field(
        max_length=500,
        description="e.g. \"broker 10.0.0.5:8883 refused the connection as 'van-07': Not authorized\"; "
        "null: the refusal is over.",
    )
    since: datetime | None = Field(default=None, description="When the box first met the problem.")


class RolloutView(BaseModel):
    id: int
    kind: str
    name: str
    version: str
    selector: str = Field(description="What was asked: devices, a group or a share of the fleet.")
    state: str = Field(description="running, halted or done.")
    waves: list[int] = Field(description="Boxes per wave.")
    current_wave: int = Field(description="0-based index of the wave in progress.")
    targets: dict[str, int] = Field(description="Boxes per target state.")
    halted_reason: str | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class FleetView(BaseModel):
    boxes: list[BoxView]
    rollouts: list[RolloutView]


class RolloutCreate(BaseModel):
    """Stage a rollout; the ingest worker sends its waves."""

    model_config = {"extra": "forbid"}

    kind: Literal["model", "config"] = "model"
    name: str = Field(min_length=1, max_length=128)
    version: str = Field(min_length=1, max_length=64)
    devices: list[str] = Field(default_factory=list, max_length=1000, description="Named boxes.")
    group: str | None = Field(default=None, max_length=64, description="Every box of this group.")
    percent: float | None = Field(default=None, gt=0, le=100, description="This share of all boxes.")
    canary: int = Field(default=1, ge=1, le=1000, description="Boxes in the first wave.")
    growth: int = Field(default=4, ge=1, le=100, description="Each wave this many times the one before.")

    @model_validator(mode="after")
    def _one_selection(self) -> RolloutCreate:
        if sum([bool(self.devices), self.group is not None, self.percent is not None]) != 1:
            raise ValueError("give exactly one of devices, group, percent")
        return self


class GroupUpdate(BaseModel):
    model_config = {"extra": "forbid"}

    group: str | None = Field(
        max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="The group; null removes it."
    )

"""Teams cases are dispatched to (``server.teams``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from server.api.schemas.common import Page
from server.teams import TEAM_NAME_MAX

_NAME = f"Trimmed, 1..{TEAM_NAME_MAX} characters, unique ignoring case; what a dispatch names."


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=256, description=_NAME)
    description: str = Field(default="", max_length=2000, description="What the team covers (free text).")


class TeamUpdate(BaseModel):
    """Only the fields given change: rename, describe, deactivate (active=false) or reactivate."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=256, description=_NAME)
    description: str | None = Field(default=None, max_length=2000, description="What the team covers.")
    active: bool | None = Field(
        default=None, description="false: no longer offered or accepted for dispatch; its cases keep it."
    )


class TeamPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int = Field(description="Numeric id (PATCH /teams/{id}).")
    name: str = Field(description="The name dispatch takes and cases' assigned_team holds.")
    description: str = Field(description="What the team covers.")
    active: bool = Field(description="Offered and accepted for dispatch.")
    created_by: str = Field(description="Who added it.")
    created_at: datetime = Field(description="When it was added.")
    updated_by: str = Field(description="Who changed it last.")
    updated_at: datetime = Field(description="When it was changed last.")


class TeamPage(Page[TeamPublic]):
    free_text_dispatch: bool = Field(
        description="true while no team is defined at all: dispatch then takes any team name. Once one "
        "is defined, dispatch takes the name of an active team only."
    )

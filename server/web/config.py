"""``GET /console/config``: what the console page needs to know about this server.

The map's tile layer (only when configured), the teams offered for dispatch, and the
taxonomy's class names a reviewer may give as a label.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from server.api.deps import ViewerDep
from streetwatch.events import ViolationType

router = APIRouter(prefix="/console", tags=["console"])


class ConsoleConfig(BaseModel):
    tile_url: str | None = Field(description="Tile URL template ({z}/{x}/{y}); null: the plain map only.")
    tile_attribution: str = Field(description="Attribution shown under the tiles.")
    teams: list[str] = Field(description="Teams offered when dispatching.")
    classes: list[str] = Field(description="Detector classes a reviewer may name as a label.")
    violation_types: list[str] = Field(description="The violation types cases have.")
    session_hours: float = Field(description="How long a sign-in lasts.")


@router.get("/config", response_model=ConsoleConfig, summary="The console page's settings")
def console_config(request: Request, _caller: ViewerDep) -> ConsoleConfig:
    settings = request.app.state.settings.console
    return ConsoleConfig(
        tile_url=settings.tile_url,
        tile_attribution=settings.tile_attribution,
        teams=list(settings.teams),
        classes=sorted(request.app.state.label_names),
        violation_types=[v.value for v in ViolationType],
        session_hours=settings.session_hours,
    )

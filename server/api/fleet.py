"""``/fleet``: what every box runs, staged rollouts, device groups, and release downloads for boxes.

==========================================  =========  ==================================================
route                                       needs      what
==========================================  =========  ==================================================
GET  /fleet                                 viewer     per box: versions, last seen, health, its rollout;
                                                       the newest rollouts with progress (?group=)
GET  /fleet/rollouts/{id}                   viewer     one rollout and each box's state in it
POST /fleet/rollouts                        admin      stage a rollout (devices | group | percent)
POST /fleet/rollouts/{id}/halt|resume       admin      stop sending / send again
PUT  /fleet/devices/{id}/group              admin      put a box in a group (null: none)
PUT  /fleet/devices/{id}/link               device     the box itself: the broker refuses it (or no
                                                       longer does), for the fleet page
GET  /fleet/downloads/{command_id}          device     the file a command names, for that box only;
                                                       HTTP Range for resuming, Content-Length, sha256
==========================================  =========  ==================================================
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from server.api.deps import AdminDep, SessionDep, ViewerDep, as_utc, require, utcnow
from server.api.schemas.fleet import FleetView, GroupUpdate, LinkReport, RolloutCreate, RolloutView
from server.auth import Principal, Role
from server.db.models import Device, Rollout, RolloutTarget
from server.fleet.overview import fleet_view, rollout_view
from server.fleet.rollouts import Selection, halt, resume, stage
from streetwatch.errors import ConfigError

router = APIRouter(prefix="/fleet", tags=["fleet"])

DeviceDep = Annotated[Principal, Depends(require(Role.device))]
#: Target states in which the box may (still) fetch its file: it was sent the command.
_MAY_DOWNLOAD = frozenset({"sent", "accepted", "progress", "done", "failed", "timeout"})


@router.get("", response_model=FleetView, summary="Every box: versions, health, rollout progress")
def get_fleet(
    session: SessionDep,
    _caller: ViewerDep,
    group: Annotated[str | None, Query(max_length=64, description="Only boxes of this group.")] = None,
) -> FleetView:
    return fleet_view(session, utcnow(), group=group)


@router.get("/rollouts/{rollout_id}", summary="One rollout with each box's state")
def get_rollout(session: SessionDep, _caller: ViewerDep, rollout_id: int) -> dict[str, Any]:
    rollout = _rollout(session, rollout_id)
    return {
        **rollout_view(rollout).model_dump(mode="json"),
        "boxes": [
            {
                "device_id": t.device_id,
                "wave": t.wave,
                "command_id": t.command_id,
                "state": t.state,
                "step": t.step,
                "reason": t.reason,
                "previous_version": t.previous_version,
                "sent_at": t.sent_at,
                "replied_at": t.replied_at,
            }
            for t in rollout.targets
        ],
    }


@router.post("/rollouts", response_model=RolloutView, status_code=201, summary="Stage a rollout")
def create_rollout(
    session: SessionDep, caller: AdminDep, request: Request, body: RolloutCreate
) -> RolloutView:
    selection = Selection(devices=tuple(body.devices), group=body.group, percent=body.percent)
    try:
        rollout = stage(
            session,
            request.app.state.settings,
            body.kind,
            body.name,
            body.version,
            selection,
            utcnow(),
            canary=body.canary,
            growth=body.growth,
            created_by=caller.username,
        )
    except ConfigError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    session.commit()
    return rollout_view(rollout)


@router.post("/rollouts/{rollout_id}/halt", response_model=RolloutView, summary="Stop sending a rollout")
def halt_rollout(session: SessionDep, caller: AdminDep, rollout_id: int) -> RolloutView:
    rollout = _rollout(session, rollout_id, lock=True)
    if rollout.state != "running":
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"rollout {rollout_id} is {rollout.state}")
    halt(rollout, f"halted by {caller.username}", utcnow())
    session.commit()
    return rollout_view(rollout)


@router.post(
    "/rollouts/{rollout_id}/resume", response_model=RolloutView, summary="Run a halted rollout again"
)
def resume_rollout(session: SessionDep, _caller: AdminDep, rollout_id: int) -> RolloutView:
    rollout = _rollout(session, rollout_id, lock=True)
    try:
        resume(rollout, utcnow())
    except ConfigError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc)) from exc
    session.commit()
    return rollout_view(rollout)


@router.put("/devices/{device_id}/group", summary="Put a box in a fleet group")
def set_group(session: SessionDep, _caller: AdminDep, device_id: str, body: GroupUpdate) -> dict[str, Any]:
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device with id {device_id!r}")
    device.fleet_group = body.group
    session.commit()
    return {"device_id": device_id, "group": body.group}


@router.put(
    "/devices/{device_id}/link",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="A box says the broker refuses it, or no longer does (that box's own token)",
    responses={403: {"description": "A box reports for itself only."}},
)
def report_link(session: SessionDep, caller: DeviceDep, device_id: str, body: LinkReport) -> None:
    if caller.username != device_id:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="a box reports its own link only")
    now = utcnow()
    device = session.get(Device, device_id)
    if device is None:  # refused from its first start: the server never heard it over MQTT
        device = Device(device_id=device_id, first_seen_at=now, last_seen_at=now, event_count=0)
        session.add(device)
    if body.problem is None:
        device.link_problem = device.link_problem_since = None
    else:
        since = min(as_utc(body.since) or now, now)  # a box clock running ahead says "now" at most
        if device.link_problem is None:
            device.link_problem_since = since
        device.link_problem = body.problem
    session.commit()


@router.get(
    "/downloads/{command_id}",
    summary="The model or configuration a command names (device credentials; Range supported)",
    response_class=FileResponse,
)
def download(session: SessionDep, caller: DeviceDep, command_id: str) -> FileResponse:
    target = session.scalar(
        select(RolloutTarget)
        .where(RolloutTarget.command_id == command_id)
        .options(selectinload(RolloutTarget.rollout))
    )
    # The same answer for "no such command" and "not yours": ids of other boxes' commands leak nothing.
    if target is None or target.device_id != caller.username:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no command {command_id!r} for this box")
    if target.state not in _MAY_DOWNLOAD:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"command {command_id} is {target.state}; it was not sent to this box",
        )
    rollout = target.rollout
    path = Path(rollout.source)
    try:
        size = path.stat().st_size
    except OSError:
        size = -1
    if size != rollout.size:
        # The box would refuse it on the hash anyway; say so here, where it can be fixed.
        raise HTTPException(
            status.HTTP_410_GONE,
            detail=f"{rollout.kind} {rollout.name} {rollout.version} is no longer on the server as signed",
        )
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"{rollout.name}-{rollout.version}{'.onnx' if rollout.kind == 'model' else '.yaml'}",
        headers={"X-Content-SHA256": rollout.sha256, "Cache-Control": "private, no-store"},
    )


def _rollout(session: SessionDep, rollout_id: int, lock: bool = False) -> Rollout:
    query = select(Rollout).where(Rollout.id == rollout_id)
    if lock:
        query = query.with_for_update()
    rollout = session.scalar(query)
    if rollout is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no rollout {rollout_id}")
    return rollout

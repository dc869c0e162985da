"""``/devices``: the edge boxes, their status, last contact and versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import func, select

from server.api.deps import SessionDep, ViewerDep
from server.api.query import DEFAULT_LIMIT, MAX_LIMIT
from server.api.schemas.common import Page
from server.api.schemas.devices import DevicePublic
from server.db.models import Device, DeviceStatus

router = APIRouter(prefix="/devices", tags=["devices"])


@router.get("", response_model=Page[DevicePublic], summary="List devices")
def list_devices(
    session: SessionDep,
    _caller: ViewerDep,
    status_: Annotated[
        DeviceStatus | None, Query(alias="status", description="Only devices in this status.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
) -> Page[DevicePublic]:
    conditions = [Device.status == status_.value] if status_ is not None else []
    total = session.scalar(select(func.count()).select_from(Device).where(*conditions)) or 0
    rows = session.scalars(
        select(Device).where(*conditions).order_by(Device.device_id).limit(limit).offset(offset)
    ).all()
    return Page[DevicePublic](
        items=[DevicePublic.model_validate(d) for d in rows], total=total, limit=limit, offset=offset
    )


@router.get("/{device_id}", response_model=DevicePublic, summary="One device")
def get_device(session: SessionDep, _caller: ViewerDep, device_id: str) -> DevicePublic:
    device = session.get(Device, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device with id {device_id!r}")
    return DevicePublic.model_validate(device)

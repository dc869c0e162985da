"""What the fleet looks like now: per box its versions, health and rollout; per rollout its progress."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from server.api.schemas.fleet import BoxRollout, BoxView, FleetView, RolloutView
from server.db.models import Device, Rollout, RolloutTarget

#: A box heard from less recently than this is "silent" (telemetry comes every minute or so).
STALE_AFTER_S = 600.0


def rollout_view(rollout: Rollout) -> RolloutView:
    return RolloutView(
        id=rollout.id,
        kind=rollout.kind,
        name=rollout.name,
        version=rollout.version,
        selector=rollout.selector,
        state=rollout.state,
        waves=list(rollout.waves),
        current_wave=rollout.current_wave,
        targets=dict(sorted(Counter(t.state for t in rollout.targets).items())),
        halted_reason=rollout.halted_reason,
        created_by=rollout.created_by,
        created_at=rollout.created_at,
        updated_at=rollout.updated_at,
    )


def fleet_view(
    session: Session,
    now: datetime,
    *,
    group: str | None = None,
    rollouts: int = 10,
    stale_after_s: float = STALE_AFTER_S,
) -> FleetView:
    """Every box (of ``group``, if given) and the newest ``rollouts`` rollouts."""
    query = select(Device).order_by(Device.device_id)
    if group is not None:
        query = query.where(Device.fleet_group == group)
    devices = session.scalars(query).all()
    latest: dict[str, tuple[RolloutTarget, Rollout]] = {}
    ids = [d.device_id for d in devices]
    for chunk in range(0, len(ids), 500):
        rows = session.execute(
            select(RolloutTarget, Rollout)
            .join(Rollout, Rollout.id == RolloutTarget.rollout_id)
            .where(RolloutTarget.device_id.in_(ids[chunk : chunk + 500]))
            .order_by(RolloutTarget.id)
        ).all()
        for target, rollout in rows:
            latest[target.device_id] = (target, rollout)  # ordered by id: the newest wins
    boxes = [_box(d, latest.get(d.device_id), now, stale_after_s) for d in devices]
    recent = session.scalars(
        select(Rollout).order_by(Rollout.id.desc()).limit(rollouts).options(selectinload(Rollout.targets))
    ).all()
    return FleetView(boxes=boxes, rollouts=[rollout_view(r) for r in recent])


def _box(
    device: Device, part: tuple[RolloutTarget, Rollout] | None, now: datetime, stale_after_s: float
) -> BoxView:
    health_report = device.health or {}
    raw_outbox = health_report.get("outbox")
    outbox: dict[str, object] = raw_outbox if isinstance(raw_outbox, dict) else {}
    rollout = None
    if part is not None:
        target, plan = part
        rollout = BoxRollout(
            rollout_id=plan.id,
            kind=plan.kind,
            name=plan.name,
            version=plan.version,
            rollout_state=plan.state,
            state=target.state,
            step=target.step,
            reason=target.reason,
            previous_version=target.previous_version,
        )
    if device.link_problem is not None:
        health = "refused"  # the root cause of any silence: nothing gets through
    elif rollout is not None and rollout.state in ("failed", "timeout"):
        health = "update_failed"
    elif device.status == "offline":
        health = "offline"
    elif (now - device.last_seen_at).total_seconds() > stale_after_s:
        health = "silent"
    else:
        health = "ok"
    models = {
        str(m["name"]): str(m.get("version"))
        for m in device.models or []
        if isinstance(m, dict) and "name" in m
    }
    config = f"{device.config_name} {device.config_version}" if device.config_name else None
    return BoxView(
        device_id=device.device_id,
        group=device.fleet_group,
        status=device.status,
        last_seen_at=device.last_seen_at,
        software_version=device.software_version,
        models=models,
        config=config,
        health=health,
        fps=_number(health_report.get("fps")),
        cpu_temp_c=_number(health_report.get("cpu_temp_c")),
        gpu_temp_c=_number(health_report.get("gpu_temp_c")),
        outbox_events=_count(outbox.get("events")),
        rollout=rollout,
        link_problem=device.link_problem,
        link_problem_since=device.link_problem_since,
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

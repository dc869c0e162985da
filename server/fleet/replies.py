"""A box's reply to a command: stored once, and moved onto the rollout target it answers."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from server.db.models import CommandReply as ReplyRow
from server.db.models import Device, Rollout, RolloutTarget
from streetwatch.messages import CommandReply

#: Target states that a later reply does not move back (a timed-out box may still answer).
FINAL = frozenset({"done", "failed", "cancelled"})
_ORDER = {"pending": 0, "sent": 1, "accepted": 2, "progress": 3, "timeout": 4, "done": 5, "failed": 5}


def record_reply(session: Session, reply: CommandReply, now: datetime) -> bool:
    """Store ``reply``; False when the same reply was stored before (a re-send after a reconnect)."""
    key = hashlib.sha256(reply.model_dump_json().encode()).hexdigest()
    factory = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    result = session.execute(
        factory(ReplyRow)
        .values(
            reply_key=key,
            command_id=reply.command_id,
            device_id=reply.device_id,
            type=reply.type,
            state=reply.state,
            step=reply.step,
            progress=reply.progress,
            reason=reply.reason,
            at=min(reply.at, now),
            received_at=now,
        )
        .on_conflict_do_nothing()
        .returning(ReplyRow.id)
    )
    if result.first() is None:  # rowcount is not reliable for ON CONFLICT through the ORM on PostgreSQL
        return False
    target = session.scalar(
        select(RolloutTarget)
        .where(RolloutTarget.command_id == reply.command_id, RolloutTarget.device_id == reply.device_id)
        .with_for_update()
    )
    if target is not None:
        _apply(session, target, reply, now)
    return True


def _apply(session: Session, target: RolloutTarget, reply: CommandReply, now: datetime) -> None:
    if target.state in FINAL or _ORDER[reply.state] < _ORDER.get(target.state, 0):
        return  # replies may arrive out of order after a reconnect; the furthest one stands
    target.state = reply.state
    target.step = reply.step
    target.replied_at = now
    if reply.state == "failed":
        target.reason = reply.reason or "the box gave no reason"
    if reply.state in FINAL:
        target.finished_at = now
    if reply.state == "done":
        rollout = session.get(Rollout, target.rollout_id)
        device = session.get(Device, target.device_id)
        if rollout is not None and device is not None:
            runs(device, rollout.kind, rollout.name, rollout.version)


def runs(device: Device, kind: str, name: str, version: str) -> None:
    """Record that ``device`` now runs ``name`` ``version`` (until its next status says otherwise)."""
    if kind == "config":
        device.config_name, device.config_version = name, version
        return
    models: list[Any] = [
        m for m in (device.models or []) if not (isinstance(m, dict) and m.get("name") == name)
    ]
    device.models = [*models, {"name": name, "version": version}]

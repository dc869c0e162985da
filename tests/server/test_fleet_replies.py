"""Command replies as the ingest stores them: once per reply, the furthest state stands, a box
speaks only for itself, and a ``done`` tells the server what the box now runs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.db.models import CommandReply as ReplyRow
from server.db.models import Device, Rollout, RolloutTarget
from server.evidence_store import EvidenceStore
from server.fleet.replies import record_reply
from server.ingest.messages import Rejected, RejectReason, decode
from server.settings import IngestLimits
from streetwatch.messages import CommandReply
from streetwatch.topics import command_replies_topic

NOW = datetime(2026, 12, 6, 8, 0, tzinfo=timezone.utc)


def _reply(
    state: str, step: str | None = None, command_id: str = "model-1", seconds: int = 0
) -> CommandReply:
    return CommandReply.model_validate(
        {"command_id": command_id, "device_id": "van-01", "type": "update_model", "state": state,
         "step": step, "reason": "probe failed" if state == "failed" else None,
         "at": NOW + timedelta(seconds=seconds)}
    )  # fmt: skip


def _seed(session: Session, kind: str = "model") -> None:
    session.add(
        Device(
            device_id="van-01", first_seen_at=NOW, last_seen_at=NOW, models=[{"name": "det", "version": "1"}]
        )
    )
    rollout = Rollout(
        kind=kind, name="det", version="2", sha256="0" * 64, size=1, signature="s", source="/x",
        selector="devices van-01", state="running", waves=[1], current_wave=0, reply_timeout_s=60,
        precision_margin=0.05, created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    rollout.targets.append(
        RolloutTarget(device_id="van-01", wave=0, command_id="model-1", state="sent", sent_at=NOW)
    )
    session.add(rollout)


def test_a_reply_is_stored_once_and_the_furthest_state_stands(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session)
    with sessions.begin() as session:
        assert record_reply(session, _reply("accepted"), NOW)
        assert record_reply(session, _reply("done", "probation", seconds=9), NOW)
        assert not record_reply(session, _reply("done", "probation", seconds=9), NOW)  # re-sent: once
        assert record_reply(
            session, _reply("progress", "download", seconds=3), NOW
        )  # late: stored, not applied
        assert record_reply(session, _reply("accepted", command_id="c-telemetry"), NOW)  # not a rollout's
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(ReplyRow)) == 4
        target = session.scalars(select(RolloutTarget)).one()
        assert (target.state, target.step, target.finished_at is not None) == ("done", "probation", True)
        device = session.get(Device, "van-01")
        assert device is not None and device.models == [{"name": "det", "version": "2"}]


def test_a_failure_keeps_the_reason_and_the_old_version(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session)
    with sessions.begin() as session:
        record_reply(session, _reply("failed", "probe"), NOW)
        record_reply(session, _reply("done", "probation", seconds=5), NOW)  # a failure is final
    with sessions() as session:
        target = session.scalars(select(RolloutTarget)).one()
        assert (target.state, target.reason) == ("failed", "probe failed")
        device = session.get(Device, "van-01")
        assert device is not None and device.models == [{"name": "det", "version": "1"}]


def test_a_done_config_update_records_the_config_the_box_runs(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        _seed(session, kind="config")
    with sessions.begin() as session:
        record_reply(session, _reply("done"), NOW)
    with sessions() as session:
        device = session.get(Device, "van-01")
        assert device is not None and (device.config_name, device.config_version) == ("det", "2")


def test_a_box_cannot_reply_for_another_and_a_bad_reply_is_refused_with_a_reason(tmp_path: Path) -> None:
    store, limits = EvidenceStore(tmp_path), IngestLimits()
    payload = _reply("done").model_dump_json().encode()
    assert isinstance(decode(command_replies_topic("van-01"), payload, limits, store), CommandReply)
    spoofed = decode(command_replies_topic("van-02"), payload, limits, store)
    assert isinstance(spoofed, Rejected) and spoofed.reason is RejectReason.spoofed
    bad = decode(command_replies_topic("van-01"), payload.replace(b'"done"', b'"finished"'), limits, store)
    assert isinstance(bad, Rejected) and bad.reason is RejectReason.malformed and "state" in bad.detail

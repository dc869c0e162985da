"""Device health: the newest telemetry report of each box, in the API and in /metrics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.ingest.process import IngestBatch
from streetwatch.messages import TelemetryMessage, TruckLoadCounts
from tests.server.api.conftest import NOW, Api
from tests.server.api.test_metrics import _parse


def _report(device: str, at: datetime, fps: float, waiting: int, oldest_s: float | None) -> TelemetryMessage:
    outbox: dict[str, Any] = {"events": waiting, "evidence": 2 * waiting, "bytes": 1000 * waiting}
    if oldest_s is not None:
        outbox["oldest_at"] = at - timedelta(seconds=oldest_s)
    return TelemetryMessage.model_validate(
        {
            "device_id": device,
            "at": at,
            "period_s": 10,
            "uptime_s": 3600,
            "frames": int(fps * 10),
            "fps": fps,
            "coverage": [{"lat": 21.03, "lon": 105.85, "at": at}],
            "outbox": outbox,
            "dropped": {"evidence_size_limit": 4},
            "cpu_temp_c": 61.5,
        }
    )


def _ingest(api: Api, *reports: TelemetryMessage) -> None:
    for report in reports:  # one batch each, as separate deliveries would be
        with api.sessions.begin() as session:
            batch = IngestBatch(session, api.settings, NOW)
            batch.add_telemetry(report)
            batch.finish()


def test_the_newest_report_is_the_health_even_when_an_older_one_arrives_later(api: Api) -> None:
    newest = _report("van-07", NOW - timedelta(seconds=10), fps=14.5, waiting=3, oldest_s=90)
    older = _report("van-07", NOW - timedelta(minutes=5), fps=2.0, waiting=50, oldest_s=600)
    _ingest(api, newest, older)  # a reconnect delivered the old report last
    device = api.get("/api/v1/devices/van-07").json()
    health = device["health"]
    assert health["fps"] == 14.5
    assert health["outbox"]["events"] == 3
    assert health["dropped"] == {"evidence_size_limit": 4}
    assert health["cpu_temp_c"] == 61.5
    assert "coverage" not in health
    assert datetime.fromisoformat(device["health_at"].replace("Z", "+00:00")) == newest.at


def test_health_shows_in_metrics_per_device(api: Api) -> None:
    _ingest(
        api,
        _report("van-07", NOW - timedelta(seconds=10), fps=14.5, waiting=3, oldest_s=90),
        _report("van-09", NOW - timedelta(seconds=20), fps=0.0, waiting=0, oldest_s=None),
    )
    metrics = _parse(api.get("/metrics").text)
    assert metrics['streetwatch_device_fps{device_id="van-07"}'] == 14.5
    assert metrics['streetwatch_device_outbox_messages{device_id="van-07"}'] == 9
    assert metrics['streetwatch_device_outbox_oldest_seconds{device_id="van-07"}'] == 90
    assert metrics['streetwatch_device_outbox_messages{device_id="van-09"}'] == 0
    assert metrics['streetwatch_device_outbox_oldest_seconds{device_id="van-09"}'] == 0


def test_a_report_from_a_clock_running_ahead_does_not_freeze_health_or_position(api: Api) -> None:
    ahead = _report("van-09", datetime(2099, 1, 1, tzinfo=NOW.tzinfo), fps=99.0, waiting=0, oldest_s=None)
    later = NOW + timedelta(seconds=30)  # the box's clock is right again
    current = _report("van-09", later, fps=5.0, waiting=1, oldest_s=None)
    moved = current.coverage[0].model_copy(update={"lat": 21.05})
    current = current.model_copy(update={"coverage": [moved]})
    for report, received in ((ahead, NOW), (current, later + timedelta(seconds=1))):
        with api.sessions.begin() as session:
            batch = IngestBatch(session, api.settings, received)
            batch.add_telemetry(report)
            batch.finish()
    device = api.get("/api/v1/devices/van-09").json()
    assert device["health"]["fps"] == 5.0
    assert device["last_lat"] == 21.05


def test_trucks_the_load_stage_silenced_show_in_health_and_metrics(api: Api) -> None:
    # A box whose every truck was sealed sends no truck event: only its counts tell it from a box
    # that sees no trucks.
    with_stage = _report("van-07", NOW - timedelta(seconds=10), fps=14.5, waiting=0, oldest_s=None)
    with_stage = with_stage.model_copy(
        update={"truck_load": TruckLoadCounts(raised=1, unsure=2, silenced=15, too_small=4)}
    )
    without = _report("van-09", NOW - timedelta(seconds=10), fps=9.0, waiting=0, oldest_s=None)
    _ingest(api, with_stage, without)
    health = api.get("/api/v1/devices/van-07").json()["health"]
    assert health["truck_load"] == {"raised": 1, "unsure": 2, "silenced": 15, "too_small": 4}
    metrics = _parse(api.get("/metrics").text)
    assert metrics['streetwatch_device_trucks_total{device_id="van-07",outcome="silenced"}'] == 15
    assert metrics['streetwatch_device_trucks_total{device_id="van-07",outcome="unsure"}'] == 2
    assert metrics['streetwatch_device_trucks_total{device_id="van-07",outcome="raised"}'] == 1
    assert metrics['streetwatch_device_trucks_total{device_id="van-07",outcome="too_small"}'] == 4
    assert not any(key.startswith("streetwatch_device_trucks_total") and "van-09" in key for key in metrics)

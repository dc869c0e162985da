"""``/metrics``: Prometheus text exposition, computed from the database on each scrape.

``prometheus_client`` writes the exposition; a custom collector (:class:`DatabaseCollector`)
reads the numbers from the database at scrape time instead of keeping in-process counters.

Counting from the database rather than from in-process counters makes the
numbers right whatever number of ingest workers and API processes run, and
keeps them across restarts. Cost per scrape: events are counted from the
cases' per-case counters (every stored event belongs to exactly one case, and
cases are far fewer than events), the lag reads one row through the
``received_at`` index, and the evidence totals scan the evidence table (one
row per image), so on a very large installation scrape every minute rather
than every few seconds.

Exposed families (labels in braces):

* ``streetwatch_events_received_total{violation_type}`` counter: events stored
  (a repeated ``event_id`` is not counted again).
* ``streetwatch_events_rejected_total{reason}`` counter: MQTT messages refused
  by the ingest worker, by reason (malformed, oversized, spoofed, ...).
* ``streetwatch_cases{state}`` gauge: cases in each workflow state.
* ``streetwatch_devices{status}`` gauge: edge boxes by last known status.
* ``streetwatch_ingest_lag_seconds`` gauge: received_at - observed_at of the
  most recently stored event (how far behind the street the server is).
* ``streetwatch_ingest_last_received_timestamp_seconds`` gauge: Unix time of
  that event's arrival (alert when it stops moving).
* ``streetwatch_evidence_images`` / ``streetwatch_evidence_bytes`` gauges.
* ``streetwatch_api_refusals_total{reason}`` counter: HTTP requests this API process refused
  (``body_too_large``, ``login_failed``, ``login_throttled``, ``unauthorized``, ``forbidden``,
  ``invalid_request``); kept in memory per process, so it restarts at 0 with the process.
* ``streetwatch_device_fps{device_id}``, ``streetwatch_device_outbox_messages{device_id}`` and
  ``streetwatch_device_outbox_oldest_seconds{device_id}`` gauges: from each box's newest telemetry
  report (a backlog that grows, or an oldest message that ages, is a box that cannot deliver).
* ``streetwatch_device_trucks_total{device_id,outcome}`` counter: trucks the box's load stage decided
  since the box started (``raised``, ``unsure``, ``silenced``, ``too_small``), from its newest
  telemetry report; a box whose trucks are all silenced is told apart from one that sees no trucks.
* ``streetwatch_ingest_worker_last_seen_seconds{client_id}`` and
  ``streetwatch_ingest_worker_connected{client_id}`` gauges: seconds since each ingest worker's
  last heartbeat (every 10 s while it runs) and whether it was then connected to the broker. A
  stopped or disconnected worker's share of messages queues in its broker session; alert on
  ``streetwatch_ingest_worker_last_seen_seconds > 60 or streetwatch_ingest_worker_connected == 0``
  held for a minute (docs/server-core.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.api.deps import SessionDep, as_utc, require
from server.auth import Role
from server.db.models import Case as CaseRow
from server.db.models import CaseState, Device, DeviceStatus, Event, Evidence, IngestWorker, Rejection
from streetwatch.events import ViolationType, utcnow

#: The content type Prometheus expects for text exposition format 0.0.4.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class DatabaseCollector(Collector):
    """Every family read from the database in one session, plus this process's API refusals."""

    def __init__(self, session: Session, refusals: dict[str, int], now: datetime | None = None) -> None:
        self.session = session
        self.refusals = refusals
        self.now = now

    def collect(self) -> Iterator[Metric]:
        yield from collect(self.session, self.now)
        yield api_refusals(self.refusals)


def collect(session: Session, now: datetime | None = None) -> list[Metric]:
    """Read every metric from the database, zero-filled for known label values."""
    received = CounterMetricFamily(
        "streetwatch_events_received_total",
        "Events stored, by violation type (duplicates not counted).",
        labels=["violation_type"],
    )
    per_type = {
        violation: int(count or 0)
        for violation, count in session.execute(
            select(CaseRow.violation_type, func.sum(CaseRow.event_count)).group_by(CaseRow.violation_type)
        )
    }
    for name in _known_then_seen([v.value for v in ViolationType], per_type):
        received.add_metric([name], float(per_type.get(name, 0)))

    rejected = CounterMetricFamily(
        "streetwatch_events_rejected_total",
        "MQTT messages refused by the ingest, by reason.",
        labels=["reason"],
    )
    for reason, count in session.execute(
        select(Rejection.reason, Rejection.count).order_by(Rejection.reason)
    ):
        rejected.add_metric([reason], float(count))

    cases = GaugeMetricFamily("streetwatch_cases", "Cases in each workflow state.", labels=["state"])
    per_state = dict(session.execute(select(CaseRow.state, func.count()).group_by(CaseRow.state)).all())
    for state in CaseState:  # the column holds members only: every state, a 0 visible
        cases.add_metric([state.value], float(per_state.get(state, 0)))

    devices = GaugeMetricFamily("streetwatch_devices", "Edge boxes by last known status.", labels=["status"])
    per_status = dict(session.execute(select(Device.status, func.count()).group_by(Device.status)).all())
    for name in _known_then_seen([s.value for s in DeviceStatus], per_status):
        devices.add_metric([name], float(per_status.get(name, 0)))

    lag = GaugeMetricFamily(
        "streetwatch_ingest_lag_seconds", "received_at - observed_at of the latest stored event."
    )
    last = GaugeMetricFamily(
        "streetwatch_ingest_last_received_timestamp_seconds", "Unix time the latest event was stored."
    )
    latest = session.execute(
        select(Event.received_at, Event.observed_at).order_by(Event.received_at.desc()).limit(1)
    ).first()
    if latest is not None:
        received_at, observed_at = latest
        lag.add_metric([], max(0.0, (received_at - observed_at).total_seconds()))
        last.add_metric([], received_at.timestamp())

    images = GaugeMetricFamily("streetwatch_evidence_images", "Evidence images in the store.")
    stored = GaugeMetricFamily("streetwatch_evidence_bytes", "Bytes of evidence images in the store.")
    count, size = session.execute(select(func.count(), func.coalesce(func.sum(Evidence.size_bytes), 0))).one()
    images.add_metric([], float(count))
    stored.add_metric([], float(size))

    return [
        received,
        rejected,
        cases,
        devices,
        lag,
        last,
        images,
        stored,
        *_device_health(session),
        *_ingest_workers(session, now or utcnow()),
    ]


def _ingest_workers(session: Session, now: datetime) -> list[Metric]:
    seen = GaugeMetricFamily(
        "streetwatch_ingest_worker_last_seen_seconds",
        "Seconds since the ingest worker's last heartbeat; while it is down its share queues at the broker.",
        labels=["client_id"],
    )
    connected = GaugeMetricFamily(
        "streetwatch_ingest_worker_connected",
        "1 if the ingest worker was connected to the broker at its last heartbeat, else 0.",
        labels=["client_id"],
    )
    rows = session.execute(
        select(IngestWorker.client_id, IngestWorker.last_seen_at, IngestWorker.connected).order_by(
            IngestWorker.client_id
        )
    )
    for client_id, last_seen_at, is_connected in rows:
        last = as_utc(last_seen_at)
        seen.add_metric([client_id], max(0.0, (now - last).total_seconds()) if last else 0.0)
        connected.add_metric([client_id], 1.0 if is_connected else 0.0)
    return [seen, connected]


def _device_health(session: Session) -> list[Metric]:
    fps = GaugeMetricFamily(
        "streetwatch_device_fps", "Frames per second in the box's newest report.", labels=["device_id"]
    )
    backlog = GaugeMetricFamily(
        "streetwatch_device_outbox_messages",
        "Events and images waiting in the box's outbox.",
        labels=["device_id"],
    )
    oldest = GaugeMetricFamily(
        "streetwatch_device_outbox_oldest_seconds",
        "Age of the oldest waiting message when the box reported (0 when the outbox was empty).",
        labels=["device_id"],
    )
    trucks = CounterMetricFamily(
        "streetwatch_device_trucks",
        "Trucks the box's load stage decided since the box started, by outcome: raised (open load, a case), "
        "unsure (a candidate), silenced (sealed, empty, closed or no truck: nothing sent), too_small "
        "(too far to judge: nothing sent).",
        labels=["device_id", "outcome"],
    )
    rows = session.execute(
        select(Device.device_id, Device.health, Device.health_at)
        .where(Device.health.is_not(None))
        .order_by(Device.device_id)
    )
    for device_id, health, health_at in rows:
        outbox = health.get("outbox") or {}
        fps.add_metric([device_id], float(health.get("fps") or 0.0))
        backlog.add_metric([device_id], float(outbox.get("events", 0) + outbox.get("evidence", 0)))
        age, reported_at = 0.0, as_utc(health_at)
        if outbox.get("oldest_at") and reported_at is not None:
            oldest_at = datetime.fromisoformat(outbox["oldest_at"].replace("Z", "+00:00"))
            age = max(0.0, (reported_at - oldest_at).total_seconds())
        oldest.add_metric([device_id], age)
        for outcome, count in (health.get("truck_load") or {}).items():  # boxes with a load stage only
            trucks.add_metric([device_id, outcome], float(count))
    return [fps, backlog, oldest, trucks]


def api_refusals(counts: dict[str, int]) -> Metric:
    """Requests this API process refused, by reason (``server.http_guards.REFUSAL_REASONS``)."""
    family = CounterMetricFamily(
        "streetwatch_api_refusals_total",
        "HTTP requests refused by this API process, by reason (since it started).",
        labels=["reason"],
    )
    for reason, count in counts.items():
        family.add_metric([reason], float(count))
    return family


def build_router() -> APIRouter:
    router = APIRouter(tags=["metrics"])

    @router.get(
        "/metrics",
        response_class=Response,
        summary="Prometheus metrics (viewer token; Prometheus sends it with `authorization`)",
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Text exposition format 0.0.4."}},
        dependencies=[Depends(require(Role.viewer))],
    )
    def metrics(request: Request, session: SessionDep) -> Response:
        collector = DatabaseCollector(session, request.app.state.refusals.snapshot())
        return Response(content=generate_latest(collector), media_type=CONTENT_TYPE)

    return router


def _known_then_seen(known: list[str], seen: dict[str, int]) -> list[str]:
    # Known label values always appear (so a 0 is visible), then any value the data holds beyond them.
    return known + sorted(k for k in seen if k not in known)

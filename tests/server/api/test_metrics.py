"""/metrics: Prometheus text format with the right numbers, from the database."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.server.api.conftest import NOW, Api, ingest, make_event, record_rejections

SAMPLE = re.compile(r'^([a-z_]+)(\{([a-z_]+="[^"]*")(,[a-z_]+="[^"]*")*\})? (-?[0-9.e+]+)$')


def _parse(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert line.startswith(("# HELP ", "# TYPE ")), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        samples[line.rsplit(" ", 1)[0]] = float(match.group(5))
    return samples


def test_metrics_count_events_rejections_cases_and_lag(api: Api) -> None:
    first = make_event(observed_at=NOW - timedelta(seconds=30))
    ingest(
        api,
        first,
        make_event(observed_at=NOW - timedelta(seconds=20), north_m=5),
        make_event(violation_type="illegal_signboard", observed_at=NOW - timedelta(seconds=42), east_m=500),
    )
    ingest(api, first)  # a redelivery: not counted again
    # The last event stored arrives 12 s after it was observed.
    ingest(
        api,
        make_event(
            violation_type="street_vending",
            observed_at=NOW - timedelta(seconds=12),
            north_m=900,
            source="fixed",
        ),
    )
    record_rejections(api, "malformed", 2)
    record_rejections(api, "spoofed", 1)
    record_rejections(api, "malformed", 1)
    cases = api.get("/api/v1/cases", params={"violation_type": "illegal_signboard"}).json()["items"]
    api.post(f"/api/v1/cases/{cases[0]['id']}/actions", json={"action": "confirm"})

    response = api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = _parse(response.text)
    assert samples['streetwatch_events_received_total{violation_type="garbage_overflow"}'] == 2
    assert samples['streetwatch_events_received_total{violation_type="illegal_signboard"}'] == 1
    assert samples['streetwatch_events_received_total{violation_type="street_vending"}'] == 1
    assert samples['streetwatch_events_received_total{violation_type="unsealed_truck"}'] == 0
    assert samples['streetwatch_events_rejected_total{reason="malformed"}'] == 3
    assert samples['streetwatch_events_rejected_total{reason="spoofed"}'] == 1
    assert samples['streetwatch_cases{state="new"}'] == 2
    assert samples['streetwatch_cases{state="confirmed"}'] == 1
    assert samples['streetwatch_cases{state="closed"}'] == 0
    assert samples['streetwatch_devices{status="unknown"}'] == 1
    assert samples["streetwatch_ingest_lag_seconds"] == 12
    assert samples["streetwatch_ingest_last_received_timestamp_seconds"] == NOW.timestamp()
    assert "# TYPE streetwatch_events_received_total counter" in response.text
    assert "# TYPE streetwatch_cases gauge" in response.text


def test_metrics_on_an_empty_database_have_zeros_and_no_lag(api: Api) -> None:
    samples = _parse(api.get("/metrics").text)
    assert samples['streetwatch_cases{state="new"}'] == 0
    assert samples["streetwatch_evidence_images"] == 0
    assert "streetwatch_ingest_lag_seconds" not in samples


def test_metrics_show_how_long_ago_each_ingest_worker_was_seen(api: Api) -> None:
    """A stopped worker's share queues in its broker session: the gauge makes that visible."""
    from server.ingest.heartbeat import beat
    from streetwatch.events import utcnow

    now = utcnow()
    started = now - timedelta(hours=1)
    assert beat(api.sessions, "ingest-1", started, now - timedelta(seconds=5), connected=True)
    assert beat(api.sessions, "ingest-2", started, now - timedelta(minutes=3), connected=True)
    assert beat(api.sessions, "ingest-2", started, now - timedelta(minutes=2), connected=False)
    samples = _parse(api.get("/metrics").text)
    assert 5 <= samples['streetwatch_ingest_worker_last_seen_seconds{client_id="ingest-1"}'] < 60
    assert 120 <= samples['streetwatch_ingest_worker_last_seen_seconds{client_id="ingest-2"}'] < 180
    assert samples['streetwatch_ingest_worker_connected{client_id="ingest-1"}'] == 1
    assert samples['streetwatch_ingest_worker_connected{client_id="ingest-2"}'] == 0

"""A patrol's vending sighting that waits for a second pass: out of the queue, counts, bulk actions
and Open311, listed for a supervisor who asks, counted in /metrics; a case everywhere once confirmed."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.server.api.conftest import NOW, Api, ingest, make_event

WINDOW = {
    "start_date": (NOW - timedelta(days=1)).isoformat(),
    "end_date": (NOW + timedelta(days=1)).isoformat(),
}


def _metric(api: Api, name: str) -> float:
    text = api.get("/metrics").text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match is not None, f"{name} not in /metrics"
    return float(match.group(1))


def _ids(answer: dict) -> set[int]:
    return {item["id"] for item in answer["items"]}


def test_a_sighting_is_listed_only_when_asked_for_and_becomes_a_case_on_the_second_pass(api: Api) -> None:
    (garbage,) = ingest(api, make_event(north_m=900))
    (first,) = ingest(api, make_event(violation_type="street_vending", detector_class="umbrella"))
    sighting = first.case_id
    assert sighting is not None and sighting != garbage.case_id

    # The dispatcher's queue, its counts and a bulk action over everything: the garbage case only.
    assert _ids(api.get("/api/v1/cases").json()) == {garbage.case_id}
    counts = api.get("/api/v1/cases/counts").json()
    assert counts["total"] == 1 and "street_vending" not in counts["by_type"]
    bulk = api.post("/api/v1/cases/bulk-actions", json={"action": "confirm", "filter": {}, "dry_run": True})
    assert [r["case_id"] for r in bulk.json()["results"]] == [garbage.case_id]
    # Open311 publishes no sighting, not even by its id.
    assert [r["service_code"] for r in api.get("/open311/v2/requests.json", params=WINDOW).json()] == [
        "garbage_overflow"
    ]
    assert api.get(f"/open311/v2/requests/{sighting}.json").status_code == 404
    # A supervisor lists them by state; the case itself reads as usual; /metrics counts them.
    held = api.get("/api/v1/cases", params={"state": "awaiting_recurrence"}).json()
    assert _ids(held) == {sighting}
    assert held["items"][0]["state"] == "awaiting_recurrence"
    detail = api.get(f"/api/v1/cases/{sighting}").json()
    assert detail["state"] == "awaiting_recurrence" and {"confirm", "reject"} <= set(
        detail["allowed_actions"]
    )
    assert _metric(api, 'streetwatch_cases{state="awaiting_recurrence"}') == 1
    assert _metric(api, 'streetwatch_cases{state="new"}') == 1

    # The second pass, 40 minutes later, from another box a few metres away.
    later = NOW + timedelta(minutes=40)
    (second,) = ingest(
        api,
        make_event(
            violation_type="street_vending",
            detector_class="umbrella",
            device_id="box-2",
            north_m=10,
            observed_at=later,
        ),
        now=later,
    )
    assert second.case_id == sighting
    assert _ids(api.get("/api/v1/cases").json()) == {garbage.case_id, sighting}
    detail = api.get(f"/api/v1/cases/{sighting}").json()
    assert detail["state"] == "new" and detail["event_count"] == 2 and len(detail["events"]) == 2
    assert [(t["from_state"], t["to_state"]) for t in detail["transitions"]] == [
        (None, "awaiting_recurrence"),
        ("awaiting_recurrence", "new"),
    ]
    published = api.get("/open311/v2/requests.json", params=WINDOW).json()
    assert {r["service_request_id"] for r in published} == {str(garbage.case_id), str(sighting)}
    assert _metric(api, 'streetwatch_cases{state="awaiting_recurrence"}') == 0
    assert _metric(api, 'streetwatch_cases{state="new"}') == 2


def test_a_supervisor_may_confirm_a_sighting_without_waiting(api: Api) -> None:
    (first,) = ingest(api, make_event(violation_type="street_vending", detector_class="umbrella"))
    answer = api.post(
        f"/api/v1/cases/{first.case_id}/actions",
        json={"action": "confirm", "expected_state": "awaiting_recurrence"},
    )
    assert answer.status_code == 200, answer.text
    assert api.get(f"/api/v1/cases/{first.case_id}").json()["state"] == "confirmed"
    assert _ids(api.get("/api/v1/cases").json()) == {first.case_id}


def test_a_case_is_not_merged_into_a_sighting_but_a_sighting_into_a_case(api: Api) -> None:
    (case,) = ingest(api, make_event(violation_type="street_vending", source="fixed", north_m=300))
    (sighting,) = ingest(api, make_event(violation_type="street_vending", detector_class="umbrella"))
    refused = api.post(
        f"/api/v1/cases/{case.case_id}/actions", json={"action": "merge", "into_case_id": sighting.case_id}
    )
    assert refused.status_code == 409 and "sighting" in refused.json()["detail"]
    assert api.get(f"/api/v1/cases/{case.case_id}").json()["state"] == "new"  # still in the queue
    merged = api.post(
        f"/api/v1/cases/{sighting.case_id}/actions", json={"action": "merge", "into_case_id": case.case_id}
    )
    assert merged.status_code == 200, merged.text
    assert api.get(f"/api/v1/cases/{case.case_id}").json()["event_count"] == 2

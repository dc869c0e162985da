"""The queue the console shows (filters, urgent order, counts, thumbnails) and bulk actions on it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import cv2
import numpy as np

from tests.server.api.conftest import NOW, Api, ingest, make_event, store_evidence

NIGHT = datetime(2026, 5, 3, 22, 0, tzinfo=timezone.utc)


def _ids(page: dict[str, Any]) -> list[int]:
    return [item["id"] for item in page["items"]]


def _open(api: Api, *, east_m: float, candidate: bool = False, now: datetime = NOW, **kw: Any) -> int:
    event = make_event(east_m=east_m, observed_at=now, **kw).model_copy(update={"candidate": candidate})
    (outcome,) = ingest(api, event, now=now)
    assert outcome.case_id is not None
    return outcome.case_id


def test_candidate_and_overdue_filters_and_counts(api: Api) -> None:
    fresh_now = datetime.now(timezone.utc)
    late = _open(api, east_m=0)  # opened in May: long past its SLA
    candidate = _open(
        api, east_m=1000, candidate=True, violation_type="unsealed_truck", detector_class="truck"
    )
    fresh = _open(api, east_m=2000, now=fresh_now)  # due hours from now
    cases = api.get("/api/v1/cases", params={"candidate": "true"}).json()
    assert _ids(cases) == [candidate] and cases["items"][0]["candidate"] is True
    assert sorted(_ids(api.get("/api/v1/cases", params={"candidate": "false"}).json())) == sorted(
        [late, fresh]
    )
    overdue = api.get("/api/v1/cases", params={"overdue": "true"}).json()
    assert sorted(_ids(overdue)) == sorted([late, candidate])
    assert all(item["overdue"] for item in overdue["items"])
    assert _ids(api.get("/api/v1/cases", params={"overdue": "false"}).json()) == [fresh]

    counts = api.get("/api/v1/cases/counts").json()
    assert counts == {
        "total": 3,
        "overdue": 2,
        "by_state": {"new": 3},
        "by_type": {"garbage_overflow": 2, "unsealed_truck": 1},
        "by_type_state": {"garbage_overflow": {"new": 2}, "unsealed_truck": {"new": 1}},
    }
    assert api.post(f"/api/v1/cases/{late}/actions", json={"action": "confirm"}).status_code == 200
    filtered = api.get("/api/v1/cases/counts", params={"violation_type": "garbage_overflow"}).json()
    assert filtered["by_state"] == {"new": 1, "confirmed": 1} and filtered["total"] == 2
    assert api.get("/api/v1/cases/counts", role="device").status_code == 403


def test_urgent_order_puts_priority_first_then_the_sla_then_newest_and_pages_by_cursor(api: Api) -> None:
    # priorities from the default matching rules: unsealed_truck 2, garbage_overflow 2, illegal_signboard 4,
    # street_vending 3; the times differ so "newest" decides within a priority.
    made = []
    for i, kind in enumerate(
        ["illegal_signboard", "garbage_overflow", "street_vending", "unsealed_truck"] * 2
    ):
        # Fixed cameras: a patrol's street vending would wait for a second pass, out of the queue.
        made.append(
            _open(api, east_m=500 * i, now=NOW + timedelta(minutes=i), violation_type=kind, source="fixed")
        )
    # One of them finished: its SLA no longer counts, so it goes after its priority's open ones.
    assert api.post(f"/api/v1/cases/{made[3]}/actions", json={"action": "resolve"}).status_code == 200
    everything = api.get("/api/v1/cases", params={"sort": "urgent", "limit": 100}).json()["items"]

    def due(c: dict[str, Any]) -> float:
        finished = c["state"] not in ("new", "confirmed", "dispatched", "possibly_resolved")
        return (
            float("inf")
            if finished or not c["sla_due_at"]
            else datetime.fromisoformat(c["sla_due_at"]).timestamp()
        )

    keys = [
        (c["priority"], due(c), -datetime.fromisoformat(c["last_event_at"]).timestamp()) for c in everything
    ]
    assert keys == sorted(keys)
    assert len({c["priority"] for c in everything}) >= 3
    # Within priority 2, the trucks (due in 2 h) come before the piles (due in 24 h) though the
    # piles were seen later, and the resolved truck after every open one.
    two = [c for c in everything if c["priority"] == 2]
    assert [c["violation_type"] for c in two] == [
        "unsealed_truck",
        "garbage_overflow",
        "garbage_overflow",
        "unsealed_truck",
    ]
    assert two[-1]["id"] == made[3]
    seen: list[int] = []
    params: dict[str, Any] = {"sort": "urgent", "limit": 3}
    while True:
        page = api.get("/api/v1/cases", params=params).json()
        seen += _ids(page)
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == [c["id"] for c in everything] and sorted(seen) == sorted(made)
    assert api.get("/api/v1/cases", params={"sort": "-urgent"}).status_code == 422


def test_thumbnails_are_small_jpegs_and_listed_with_each_case(api: Api) -> None:
    big = np.random.default_rng(5).integers(0, 255, size=(600, 800, 3), dtype=np.uint8)
    crop = cv2.imencode(".jpg", big)[1].tobytes()
    frame = cv2.imencode(".jpg", big[:100, :100])[1].tobytes()
    for data in (frame, crop):
        store_evidence(api, data)
    case_id = _open(api, east_m=0, evidence=(frame, crop))
    (item,) = api.get("/api/v1/cases").json()["items"]
    assert (
        item["id"] == case_id
        and item["crop_url"]
        and item["thumbnail_url"] == item["crop_url"] + "/thumbnail"
    )
    assert (item["detector_class"], item["model_version"]) == ("overflow", "1")
    small = api.get(item["thumbnail_url"])
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(small.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (120, 160) and len(small.content) < len(crop)
    sized = cv2.imdecode(
        np.frombuffer(api.get(item["thumbnail_url"], params={"size": 64}).content, np.uint8), 1
    )
    assert sized.shape[:2] == (48, 64)
    headers = {**api.headers("viewer"), "If-None-Match": small.headers["etag"]}
    cached = api.client.get(item["thumbnail_url"], headers=headers)
    assert cached.status_code == 304
    assert api.get(item["thumbnail_url"], params={"size": 10}).status_code == 422
    assert api.get("/api/v1/evidence/" + "0" * 64 + "/thumbnail").status_code == 404
    assert api.get(item["thumbnail_url"], role="device").status_code == 403


def test_bulk_reject_of_one_box_over_one_night_lists_every_case(api: Api) -> None:
    night = [
        _open(api, east_m=600 * i, candidate=True, device_id="box-7", now=NIGHT + timedelta(hours=i))
        for i in range(4)
    ]
    day = _open(api, east_m=5000, candidate=True, device_id="box-7", now=NIGHT + timedelta(hours=14))
    other_box = _open(api, east_m=6000, candidate=True, device_id="box-8", now=NIGHT + timedelta(hours=1))
    not_candidate = _open(api, east_m=7000, device_id="box-7", now=NIGHT + timedelta(hours=2))
    # Someone confirms one of them between the selection on screen and the bulk action.
    moved = night[2]
    body: dict[str, Any] = {
        "action": "reject",
        "reject_reason": "not_a_violation",
        "reason": "box-7 night glare",
        "filter": {
            "device_id": "box-7",
            "candidate": True,
            "since": NIGHT.isoformat(),
            "until": (NIGHT + timedelta(hours=8)).isoformat(),
        },
        "expected_state": "new",
    }
    dry = api.post("/api/v1/cases/bulk-actions", json={**body, "dry_run": True}).json()
    assert (dry["matched"], dry["dry_run"]) == (4, True) and [r["case_id"] for r in dry["results"]] == night
    assert api.post(f"/api/v1/cases/{moved}/actions", json={"action": "confirm"}).status_code == 200

    answer = api.post("/api/v1/cases/bulk-actions", json=body)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert (result["matched"], result["succeeded"], result["failed"]) == (4, 3, 1)
    by_case = {r["case_id"]: r for r in result["results"]}
    assert set(by_case) == set(night)
    assert by_case[moved]["status"] == 409 and by_case[moved]["state"] == "confirmed"
    assert "confirmed now, not new as seen" in by_case[moved]["detail"]
    bulk_ids: set[str] = set()
    for case_id in set(night) - {moved}:
        assert (by_case[case_id]["status"], by_case[case_id]["state"]) == (200, "rejected")
        step = api.get(f"/api/v1/cases/{case_id}").json()["transitions"][-1]
        assert (step["actor"], step["reason"], step["reason_code"]) == (
            "reviewer-1",
            "box-7 night glare",
            "not_a_violation",
        )
        bulk_ids.add(step["details"]["bulk"])
    assert len(bulk_ids) == 1  # one id ties the whole call together in the history
    for untouched in (day, other_box, not_candidate):
        assert api.get(f"/api/v1/cases/{untouched}").json()["state"] == "new"


def test_bulk_by_ids_expects_the_state_each_case_had_when_selected(api: Api) -> None:
    a = _open(api, east_m=0)
    b = _open(api, east_m=1000)
    answer = api.post(
        "/api/v1/cases/bulk-actions",
        json={"action": "note", "reason": "checked on the map", "case_ids": [a, b, 999999]},
    ).json()
    assert [(r["case_id"], r["status"]) for r in answer["results"]] == [(a, 200), (b, 200), (999999, 404)]
    assert api.get(f"/api/v1/cases/{a}").json()["transitions"][-1]["action"] == "note"
    dispatch = {"action": "dispatch", "team": "north", "case_ids": [a]}
    assert api.post("/api/v1/cases/bulk-actions", json=dispatch).json()["results"][0]["state"] == "dispatched"


def test_bulk_requests_that_cannot_be_meant_are_refused(api: Api) -> None:
    a = _open(api, east_m=0)
    url = "/api/v1/cases/bulk-actions"
    refused = [
        {"action": "merge", "case_ids": [a]},
        {"action": "annotate", "case_ids": [a]},
        {"action": "reject", "case_ids": [a], "filter": {"device_id": "box-1"}},
        {"action": "reject"},
        {"action": "dispatch", "case_ids": [a]},  # no team
        {"action": "reject", "reject_reason": "ugly", "case_ids": [a]},
        {"action": "relabel", "label": "lorry", "case_ids": [a]},
        {"action": "reject", "filter": {"violation_type": "parking"}},
    ]
    for body in refused:
        assert api.post(url, json=body).status_code == 422, body
    assert api.get(f"/api/v1/cases/{a}").json()["state"] == "new"


def test_a_filter_matching_too_many_cases_is_refused(api: Api, monkeypatch: Any) -> None:
    from server.api import bulk

    monkeypatch.setattr(bulk, "MAX_BULK", 2)
    for i in range(3):
        _open(api, east_m=1000 * i)
    answer = api.post("/api/v1/cases/bulk-actions", json={"action": "reject", "filter": {"state": ["new"]}})
    assert answer.status_code == 422 and "matches 3 cases" in answer.json()["detail"]
    assert api.get("/api/v1/cases/counts").json()["by_state"] == {"new": 3}

"""``GET /cases/export``: the cases the queue's filters match as one CSV, every page at once, with
who decided what, what the box and the reviewers said, and a link back to the console."""

from __future__ import annotations

import csv
import io

import pytest

from server.api import case_export
from streetwatch.events import TruckLoad
from tests.server.api.conftest import Api, ingest
from tests.server.api.test_review_actions import _act, _case, _truck
from tests.server.api.test_truck_load_attributes import _truck as _classified_truck


def _export(api: Api, **params: str) -> list[dict[str, str]]:
    answer = api.get("/api/v1/cases/export", params=params)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"].startswith('attachment; filename="streetwatch-cases-')
    lines = answer.text.splitlines()
    assert lines[0] == ",".join(case_export.COLUMNS)
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_a_row_per_case_says_where_when_who_decided_and_what_was_seen(api: Api) -> None:
    truck = _truck(api, 0, [1])
    load = {"attributes": {"load": {"value": "partly_covered", "box": None}}}
    assert _act(api, truck, action="confirm", review=load).status_code == 200
    (outcome,) = ingest(api, _classified_truck(api, TruckLoad.uncovered, 0.91, seed=40))
    classified = outcome.case_id
    pile = _case(api, 800, [3])
    assert _act(api, pile, action="reject", reject_reason="bad_image").status_code == 200
    fresh = _case(api, 1600, [5])

    rows = {int(r["case_id"]): r for r in _export(api)}
    assert set(rows) == {truck, classified, pile, fresh}
    row = rows[truck]
    assert (row["violation_type"], row["state"]) == ("unsealed_truck", "confirmed")
    assert (row["decision"], row["decided_by"], row["reviewed_as"]) == (
        "confirmed",
        "reviewer-1",
        "load=partly_covered",
    )
    assert row["decided_at"].endswith("Z") and row["opened_at"].endswith("Z")
    assert row["model"] == "test-model 1" and row["detector_class"] == "truck"
    assert float(row["lat"]) != 0 and float(row["lon"]) != 0
    assert row["console_url"] == f"http://testserver/console/#/queue?state=all&case={truck}"
    detail = api.get(f"/api/v1/cases/{truck}").json()
    assert row["event_count"] == str(detail["event_count"]) and row["priority"] == str(detail["priority"])
    # What the box's load classifier said rides along, beside what reviewers said.
    assert rows[classified]["box_said"] == "load=uncovered; load_model=truck-load 1.0.0; load_score=0.91"
    assert (rows[pile]["decision"], rows[pile]["reject_reason"]) == ("rejected", "bad_image")
    assert (rows[fresh]["state"], rows[fresh]["decision"], rows[fresh]["decided_by"]) == ("new", "", "")
    assert rows[fresh]["reviewed_as"] == rows[fresh]["box_said"] == ""


def test_the_queue_filters_and_sort_apply_and_every_page_is_in_the_file(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(case_export, "_BATCH", 2)  # three queries for five cases: the order holds
    piles = [_case(api, 800 * i, [10 * i + 1]) for i in range(5)]
    assert _act(api, piles[0], action="reject", reject_reason="duplicate").status_code == 200
    exported = [int(r["case_id"]) for r in _export(api, sort="id")]
    assert exported == sorted(piles)
    assert [int(r["case_id"]) for r in _export(api, sort="-id")] == sorted(piles, reverse=True)
    # A state filter leaves the rejected pile out, as it does in the queue.
    assert {int(r["case_id"]) for r in _export(api, state="new")} == set(piles[1:])
    assert _export(api, violation_type="unsealed_truck") == []


def test_a_filter_too_wide_or_wrong_is_refused_with_the_reason(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        _case(api, 800 * i, [i + 1])
    monkeypatch.setattr(case_export, "MAX_EXPORT", 2)
    wide = api.get("/api/v1/cases/export")
    assert wide.status_code == 422 and "match more than 2 cases; narrow them" in wide.text
    monkeypatch.setattr(case_export, "MAX_EXPORT", 3)  # as many as the cap: the whole file
    assert len(_export(api)) == 3
    for params, reason in (
        ({"device_id": "*"}, "device_id"),
        ({"sort": "-urgent"}, "urgent has one direction"),
        ({"sort": "colour"}, "sort"),
    ):
        answer = api.get("/api/v1/cases/export", params=params)
        assert answer.status_code == 422 and reason in answer.text, (params, answer.text)

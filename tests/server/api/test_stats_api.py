"""Supervisor statistics: live precision per type and model version, reviewer throughput, open
cases by age and SLA, recurrences by place; JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any

from server.cases.service import transition
from tests.server.api.conftest import NOW, Api, ingest, make_event


def _open(api: Api, *, east_m: float, version: str = "1", now: datetime = NOW, **kw: Any) -> int:
    event = make_event(east_m=east_m, observed_at=now, **kw)
    event = event.model_copy(update={"model": event.model.model_copy(update={"version": version})})
    (outcome,) = ingest(api, event, now=now)
    assert outcome.case_id is not None
    return outcome.case_id


def _act(api: Api, case_id: int, role: str = "reviewer", **body: Any) -> None:
    answer = api.post(f"/api/v1/cases/{case_id}/actions", role=role, json=body)
    assert answer.status_code == 200, answer.text


def _csv(api: Api, path: str, **params: Any) -> list[dict[str, str]]:
    answer = api.get(path, params={**params, "format": "csv"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(answer.text)))


def test_precision_per_type_and_model_version(api: Api) -> None:
    # model 1: 3 confirmed, 1 rejected as not a violation, 1 duplicate (excluded): 3 / 4
    old = [_open(api, east_m=300 * i, version="1") for i in range(5)]
    for case_id in old[:3]:
        _act(api, case_id, action="confirm")
    _act(api, old[3], action="reject", reject_reason="not_a_violation")
    _act(api, old[4], action="reject", reject_reason="duplicate")
    # model 2: 1 confirmed, 1 permitted (counts as rejected), 1 decided then taken back (not counted)
    new = [_open(api, east_m=5000 + 300 * i, version="2") for i in range(3)]
    _act(api, new[0], action="confirm")
    _act(api, new[1], action="reject", reject_reason="permitted")
    _act(api, new[2], action="reject")
    _act(api, new[2], action="reopen")
    _open(api, east_m=9000, version="2")  # never reviewed
    trucks = _open(api, east_m=12000, version="2", violation_type="unsealed_truck", detector_class="truck")
    _act(api, trucks, action="confirm")

    answer = api.get("/api/v1/stats/precision").json()
    rows = {(r["violation_type"], r["model_version"]): r for r in answer["rows"]}
    assert set(rows) == {("garbage_overflow", "1"), ("garbage_overflow", "2"), ("unsealed_truck", "2")}
    one, two = rows[("garbage_overflow", "1")], rows[("garbage_overflow", "2")]
    assert (one["reviewed"], one["confirmed"], one["rejected"], one["excluded"]) == (5, 3, 2, 1)
    assert one["share_confirmed"] == 0.75
    assert one["reject_reasons"] == {"not_a_violation": 1, "duplicate": 1}
    assert (two["reviewed"], two["confirmed"], two["share_confirmed"]) == (2, 1, 0.5)
    assert two["reject_reasons"] == {"permitted": 1} and two["model_name"] == "test-model"
    totals = {t["violation_type"]: t for t in answer["totals"]}
    assert (totals["garbage_overflow"]["reviewed"], totals["garbage_overflow"]["share_confirmed"]) == (
        7,
        0.6667,
    )
    assert totals["unsealed_truck"]["share_confirmed"] == 1.0

    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert api.get("/api/v1/stats/precision", params={"since": future}).json()["rows"] == []
    table = _csv(api, "/api/v1/stats/precision")
    by_key = {(r["violation_type"], r["model_version"]): r for r in table}
    assert by_key[("garbage_overflow", "1")]["share_confirmed"] == "0.75"
    assert by_key[("garbage_overflow", "1")]["reject_not_a_violation"] == "1"
    assert by_key[("garbage_overflow", "2")]["reject_duplicate"] == ""


def test_throughput_per_reviewer_per_hour(api: Api) -> None:
    cases = [_open(api, east_m=300 * i) for i in range(4)]
    _act(api, cases[0], action="confirm")
    _act(api, cases[1], action="reject", reject_reason="bad_image")
    _act(api, cases[2], action="note", reason="call the owner")
    _act(api, cases[3], role="admin", action="confirm")
    with api.sessions.begin() as session:  # system steps are nobody's work
        transition(session, cases[0], "possibly_resolved", "system:coverage", "patrol passed")
    answer = api.get("/api/v1/stats/throughput", params={"bucket": "day"}).json()
    rows = {r["reviewer"]: r for r in answer["rows"]}
    assert set(rows) == {"reviewer-1", "admin-1"}
    mine = rows["reviewer-1"]
    assert (mine["actions"], mine["confirm"], mine["reject"], mine["other"]) == (3, 1, 1, 1)
    assert mine["bucket_start"].endswith("T00:00:00Z") or mine["bucket_start"].endswith("T00:00:00+00:00")
    totals = {r["reviewer"]: r for r in answer["reviewers"]}
    assert (totals["reviewer-1"]["actions"], totals["reviewer-1"]["per_bucket"]) == (3, 3.0)
    table = _csv(api, "/api/v1/stats/throughput")
    assert {r["reviewer"]: r["actions"] for r in table} == {"reviewer-1": "3", "admin-1": "1"}


def test_open_cases_by_age_and_sla(api: Api) -> None:
    now = datetime.now(timezone.utc)
    _open(api, east_m=0, now=now - timedelta(minutes=10))  # <1h, not yet due (garbage: 24 h SLA)
    _open(api, east_m=1000, now=now - timedelta(hours=30))  # 1-3d, overdue
    _open(api, east_m=2000, now=now - timedelta(days=10))  # >7d, overdue
    done = _open(api, east_m=3000, now=now - timedelta(days=10))
    _act(api, done, action="reject")  # rejected is not open
    answer = api.get("/api/v1/stats/open-cases").json()
    assert answer["buckets"] == ["<1h", "1-4h", "4-24h", "1-3d", "3-7d", ">7d"]
    assert [(r["age"], r["open"], r["overdue"]) for r in answer["rows"]] == [
        ("<1h", 1, 0),
        ("1-3d", 1, 1),
        (">7d", 1, 1),
    ]
    assert (answer["total_open"], answer["total_overdue"]) == (3, 2)
    assert [r["age"] for r in _csv(api, "/api/v1/stats/open-cases")] == ["<1h", "1-3d", ">7d"]


def test_recurrences_by_place(api: Api) -> None:
    now = datetime.now(timezone.utc)
    first = _open(api, east_m=0, now=now - timedelta(days=2))
    _act(api, first, action="resolve")
    _act(api, first, action="close")
    # Seen again at the same spot after it was closed: a recurrence of the first case.
    again = _open(api, east_m=2, now=datetime.now(timezone.utc) + timedelta(seconds=1))
    _open(api, east_m=4000)  # alone at its place: below min_cases
    answer = api.get("/api/v1/stats/recurrences").json()
    (row,) = answer["rows"]
    assert (row["violation_type"], row["cases"], row["recurrences"], row["open"]) == (
        "garbage_overflow",
        2,
        1,
        1,
    )
    assert row["case_ids"] == [again, first] and len(row["cell"]) == 7
    assert api.get("/api/v1/stats/recurrences", params={"min_cases": 1}).json()["rows"][1]["cases"] == 1
    (line,) = _csv(api, "/api/v1/stats/recurrences")
    assert line["case_ids"] == f"{again} {first}"


def test_stats_are_for_dispatcher_roles_only(api: Api) -> None:
    for path in ("precision", "throughput", "open-cases", "recurrences"):
        assert api.get(f"/api/v1/stats/{path}", role="device").status_code == 403
        assert api.get(f"/api/v1/stats/{path}", role=None).status_code == 401
        assert api.get(f"/api/v1/stats/{path}", role="viewer").status_code == 200

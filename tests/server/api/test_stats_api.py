"""Supervisor statistics: live precision per type and model version, reviewer throughput, open
cases by age and SLA, recurrences by place; JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from typing import Any

from server.cases.service import transition
from server.db.models import Event
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
    # The model was right on the permitted one (the object is real, only allowed): 2 of 2.
    assert (two["permitted"], two["share_real"]) == (1, 1.0)
    assert (one["permitted"], one["share_real"]) == (0, 0.75)
    totals = {t["violation_type"]: t for t in answer["totals"]}
    assert (totals["garbage_overflow"]["reviewed"], totals["garbage_overflow"]["share_confirmed"]) == (
        7,
        0.6667,
    )
    assert (totals["garbage_overflow"]["permitted"], totals["garbage_overflow"]["share_real"]) == (1, 0.8333)
    assert totals["unsealed_truck"]["share_confirmed"] == 1.0

    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert api.get("/api/v1/stats/precision", params={"since": future}).json()["rows"] == []
    table = _csv(api, "/api/v1/stats/precision")
    by_key = {(r["violation_type"], r["model_version"]): r for r in table}
    assert by_key[("garbage_overflow", "1")]["share_confirmed"] == "0.75"
    assert by_key[("garbage_overflow", "1")]["reject_not_a_violation"] == "1"
    assert by_key[("garbage_overflow", "2")]["reject_duplicate"] == ""
    second = by_key[("garbage_overflow", "2")]
    assert (second["permitted"], second["share_real"]) == ("1", "1.0")


def test_a_dispatch_or_resolve_without_a_confirm_counts_as_confirmed(api: Api) -> None:
    """A dispatcher who sends a team straight from the queue has judged the case real."""
    cases = [_open(api, east_m=300 * i, version="7") for i in range(4)]
    _act(api, cases[0], action="dispatch", team="east")
    _act(api, cases[1], action="resolve")
    _act(api, cases[2], action="dispatch", team="east")
    _act(api, cases[2], action="reject", reject_reason="not_a_violation")  # the team found nothing
    _act(api, cases[3], action="confirm")
    _act(api, cases[3], action="dispatch", team="east")  # one decision, not two
    (row,) = [r for r in api.get("/api/v1/stats/precision").json()["rows"] if r["model_version"] == "7"]
    assert (row["reviewed"], row["confirmed"], row["rejected"]) == (4, 3, 1)
    assert row["share_confirmed"] == 0.75


def test_precision_tells_the_configurations_a_model_version_ran_under_apart(api: Api) -> None:
    """The same weights under two configurations (say, a lower threshold on some boxes) are two rows."""
    under_seven = [_open(api, east_m=300 * i) for i in range(3)]
    with api.sessions.begin() as session:  # the box ran patrol-van 7, installed over the air
        for event in session.query(Event).filter(Event.case_id.in_(under_seven)):
            event.config_name, event.config_version = "patrol-van", "7"
    own_file = _open(api, east_m=5000)
    for case_id in under_seven[:2]:
        _act(api, case_id, action="confirm")
    _act(api, under_seven[2], action="reject", reject_reason="not_a_violation")
    _act(api, own_file, action="reject", reject_reason="not_a_violation")

    rows = {r["config"]: r for r in api.get("/api/v1/stats/precision").json()["rows"]}
    assert set(rows) == {"patrol-van 7", None}
    assert (rows["patrol-van 7"]["reviewed"], rows["patrol-van 7"]["share_confirmed"]) == (3, 0.6667)
    assert (rows[None]["reviewed"], rows[None]["share_confirmed"]) == (1, 0.0)
    assert rows[None]["model_version"] == rows["patrol-van 7"]["model_version"] == "1"
    table = {r["config"]: r for r in _csv(api, "/api/v1/stats/precision")}
    assert set(table) == {"patrol-van 7", ""} and table["patrol-van 7"]["confirmed"] == "2"


def _decide(api: Api, case_id: int, action: str, hours: float, reason_code: str | None = None) -> None:
    """A reviewer's step at ``NOW + hours``: the API would stamp the wall clock instead."""
    to_state = {"confirm": "confirmed", "reject": "rejected", "reopen": "new"}[action]
    with api.sessions.begin() as session:
        transition(
            session,
            case_id,
            to_state,
            "reviewer-1",
            action,
            action=action,
            reason_code=reason_code,
            now=NOW + timedelta(hours=hours),
        )


def _window_counts(api: Api, **params: str) -> tuple[int, int, int, float | None]:
    answer = api.get("/api/v1/stats/precision", params=params)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["rows"]
    if not rows:
        return (0, 0, 0, None)
    (row,) = rows
    return (row["reviewed"], row["confirmed"], row["rejected"], row["share_confirmed"])


def test_precision_counts_decisions_made_in_the_window(api: Api) -> None:
    at = {name: _open(api, east_m=300 * i) for i, name in enumerate("abcdefgh")}
    _decide(api, at["a"], "confirm", 1)  # before the window
    _decide(api, at["b"], "confirm", 3)  # inside
    _decide(api, at["c"], "reject", 4, "not_a_violation")  # inside
    _decide(api, at["d"], "confirm", 6)  # after
    _decide(api, at["e"], "reject", 1)  # rejected before, restored, confirmed inside: counts once
    _decide(api, at["e"], "reopen", 1.5)
    _decide(api, at["e"], "confirm", 3.5)
    _decide(api, at["f"], "reject", 3)  # rejected inside but taken back: no decision stands
    _decide(api, at["f"], "reopen", 4.5)
    _decide(api, at["g"], "confirm", 2)  # exactly at since: inside (since is inclusive)
    _decide(api, at["h"], "confirm", 5)  # exactly at until: outside (until is exclusive)
    since, until = NOW + timedelta(hours=2), NOW + timedelta(hours=5)

    assert _window_counts(api) == (7, 6, 1, 0.8571)  # all time, as before
    assert _window_counts(api, since=since.isoformat(), until=until.isoformat()) == (4, 3, 1, 0.75)
    assert _window_counts(api, since=since.isoformat()) == (6, 5, 1, 0.8333)
    assert _window_counts(api, until=until.isoformat()) == (5, 4, 1, 0.8)
    assert _window_counts(api, since=(NOW + timedelta(hours=7)).isoformat()) == (0, 0, 0, None)

    # The answer says which window it used, in UTC: an offset is converted, no zone means UTC.
    hanoi = since.astimezone(timezone(timedelta(hours=7))).isoformat()
    naive = until.replace(tzinfo=None).isoformat()
    answer = api.get("/api/v1/stats/precision", params={"since": hanoi, "until": naive})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["rows"][0]["reviewed"], body["totals"][0]["reviewed"]) == (4, 4)
    assert datetime.fromisoformat(body["since"]) == since
    assert datetime.fromisoformat(body["until"]) == until
    assert datetime.fromisoformat(body["since"]).utcoffset() == timedelta(0)
    everything = api.get("/api/v1/stats/precision").json()
    assert (everything["since"], everything["until"]) == (None, None)
    table = _csv(api, "/api/v1/stats/precision", since=since.isoformat(), until=until.isoformat())
    assert [row["reviewed"] for row in table] == ["4"]


def test_precision_refuses_a_bad_window(api: Api) -> None:
    early, late = NOW.isoformat(), (NOW + timedelta(hours=1)).isoformat()
    for params in (
        {"since": "yesterday"},
        {"until": "2026-13-01T00:00:00Z"},
        {"since": late, "until": early},  # since after until
        {"since": early, "until": early},  # an empty window is a mistake, not an empty answer
        {"since": "0001-01-01T00:00:00+14:00"},  # before year 1 once in UTC
    ):
        answer = api.get("/api/v1/stats/precision", params=params)
        assert answer.status_code == 422, (params, answer.text)
        assert "since" in answer.text or "until" in answer.text or "time" in answer.text, answer.text
    backwards = api.get("/api/v1/stats/precision", params={"since": late, "until": early})
    assert "until: must be after since" in backwards.json()["detail"]
    for path in ("throughput", "recurrences"):  # the other windowed statistics refuse it alike
        assert api.get(f"/api/v1/stats/{path}", params={"since": late, "until": early}).status_code == 422
    assert api.get("/api/v1/stats/precision", params={"since": early, "until": late}).status_code == 200


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
    # The queue's own area filter lists the place's cases: what the supervisor page links to.
    listed = api.get("/api/v1/cases", params={"bbox": row["bbox"], "state": ["new", "closed"]}).json()
    assert sorted(c["id"] for c in listed["items"]) == sorted([again, first])
    # Three signs side by side on one shop front, seen at once: three cases at one place, but
    # nothing came back.
    shop = [
        _open(
            api,
            east_m=8000 + i,
            violation_type="illegal_signboard",
            detector_class="signboard",
            box=(2.0 + 20 * i, 10.0, 18.0 + 20 * i, 40.0),  # in its 64x48 frame
        )
        for i in range(3)
    ]
    assert len(set(shop)) == 3
    rows = api.get("/api/v1/stats/recurrences").json()["rows"]
    assert [(r["violation_type"], r["cases"], r["recurrences"]) for r in rows] == [
        ("garbage_overflow", 2, 1),  # first: it keeps coming back
        ("illegal_signboard", 3, 0),
    ]
    assert api.get("/api/v1/stats/recurrences", params={"min_cases": 1}).json()["rows"][2]["cases"] == 1
    came_back = api.get("/api/v1/stats/recurrences", params={"min_recurrences": 1}).json()["rows"]
    assert [r["violation_type"] for r in came_back] == ["garbage_overflow"]
    line, _shop = _csv(api, "/api/v1/stats/recurrences")
    assert line["case_ids"] == f"{again} {first}" and line["bbox"] == rows[0]["bbox"]


def test_stats_are_for_dispatcher_roles_only(api: Api) -> None:
    for path in ("precision", "throughput", "open-cases", "recurrences"):
        assert api.get(f"/api/v1/stats/{path}", role="device").status_code == 403
        assert api.get(f"/api/v1/stats/{path}", role=None).status_code == 401
        assert api.get(f"/api/v1/stats/{path}", role="viewer").status_code == 200

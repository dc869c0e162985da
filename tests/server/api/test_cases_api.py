"""GET /cases (filters, sort, pages with totals), case detail, and the review actions."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from server.db.models import CaseTransition
from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, offset_position, store_evidence


def _seed(api: Api) -> dict[str, int]:
    frame_a, frame_b, crop = jpeg(20), jpeg(21), jpeg(22)
    for image in (frame_a, frame_b, crop):
        store_evidence(api, image)
    outcomes = ingest(
        api,
        # Two boxes see the same overflowing bin a few metres apart: one case.
        make_event(observed_at=NOW - timedelta(hours=2), evidence=(frame_a, crop), score=0.6),
        make_event(
            observed_at=NOW - timedelta(hours=1), device_id="box-2", north_m=4, evidence=(frame_b, crop)
        ),
        make_event(violation_type="illegal_signboard", observed_at=NOW - timedelta(days=3), east_m=900),
        make_event(  # a fixed camera's: a patrol's would wait for a second pass
            violation_type="street_vending",
            observed_at=NOW - timedelta(minutes=5),
            north_m=-700,
            source="fixed",
        ),
    )
    assert outcomes[0].case_id == outcomes[1].case_id
    return {
        "garbage": outcomes[0].case_id or 0,
        "sign": outcomes[2].case_id or 0,
        "vend": outcomes[3].case_id or 0,
    }


def _ids(body: dict) -> list[int]:  # type: ignore[type-arg]
    return [item["id"] for item in body["items"]]


def test_filters_sort_and_pages(api: Api) -> None:
    cases = _seed(api)
    everything = api.get("/api/v1/cases").json()
    assert everything["total"] == 3
    assert _ids(everything) == [cases["vend"], cases["garbage"], cases["sign"]]  # latest activity first

    garbage = api.get("/api/v1/cases", params={"violation_type": "garbage_overflow"}).json()
    assert _ids(garbage) == [cases["garbage"]]
    assert garbage["items"][0]["event_count"] == 2 and garbage["items"][0]["device_count"] == 2

    # Default priorities: garbage 2, vending 3, signboard 4.
    assert _ids(api.get("/api/v1/cases", params={"priority": 4}).json()) == [cases["sign"]]
    by_priority = api.get("/api/v1/cases", params={"sort": "priority"}).json()
    assert _ids(by_priority) == [cases["garbage"], cases["vend"], cases["sign"]]

    recent = api.get("/api/v1/cases", params={"since": (NOW - timedelta(days=1)).isoformat()}).json()
    assert set(_ids(recent)) == {cases["garbage"], cases["vend"]}

    south_west, north_east = offset_position(-100, -100), offset_position(100, 1000)
    bbox = f"{south_west[1]},{south_west[0]},{north_east[1]},{north_east[0]}"
    assert set(_ids(api.get("/api/v1/cases", params={"bbox": bbox}).json())) == {
        cases["garbage"],
        cases["sign"],
    }

    api.post(f"/api/v1/cases/{cases['sign']}/actions", json={"action": "confirm"})
    states = api.get("/api/v1/cases", params=[("state", "confirmed"), ("state", "rejected")]).json()
    assert _ids(states) == [cases["sign"]]

    pages = [
        api.get("/api/v1/cases", params={"limit": 1, "offset": o, "sort": "id"}).json() for o in (0, 1, 2, 3)
    ]
    assert [p["total"] for p in pages] == [3, 3, 3, 3]
    assert [i for p in pages for i in _ids(p)] == sorted(cases.values())


def test_detail_lists_events_evidence_and_history(api: Api) -> None:
    cases = _seed(api)
    detail = api.get(f"/api/v1/cases/{cases['garbage']}").json()
    assert detail["events_total"] == 2
    assert [e["device_id"] for e in detail["events"]] == ["box-1", "box-2"]  # oldest first
    # Best-scoring evidence first: box-2's event scored 0.8, box-1's 0.6.
    assert [url.rsplit("/", 1)[1] for url in detail["evidence_urls"]] == [
        detail["events"][1]["evidence"]["frame_sha256"],
        detail["events"][0]["evidence"]["frame_sha256"],
    ]
    image = api.client.get(detail["evidence_urls"][0], headers=api.headers("viewer"))
    assert image.status_code == 200 and image.content == jpeg(21)
    cached = api.client.get(
        detail["evidence_urls"][0], headers={**api.headers("viewer"), "If-None-Match": image.headers["etag"]}
    )
    assert cached.status_code == 304 and cached.content == b""
    assert detail["transitions"][0]["from_state"] is None and detail["transitions"][0]["to_state"] == "new"
    missing = api.get("/api/v1/cases/999999")
    assert missing.status_code == 404 and "no case" in missing.json()["detail"]


def test_actions_walk_the_workflow_and_record_who_and_why(api: Api) -> None:
    case_id = _seed(api)["garbage"]
    url = f"/api/v1/cases/{case_id}/actions"
    steps = [
        ({"action": "confirm", "reason": "bags on the curb"}, "confirmed"),
        ({"action": "dispatch", "team": "sanitation-3", "reason": "nearest crew"}, "dispatched"),
        ({"action": "resolve", "reason": "collected"}, "resolved"),
        ({"action": "reopen", "reason": "still there"}, "confirmed"),
        ({"action": "resolve", "reason": "collected again"}, "resolved"),
        ({"action": "close"}, "closed"),
    ]
    for body, state in steps:
        response = api.post(url, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state
    final = api.get(f"/api/v1/cases/{case_id}").json()
    assert final["assigned_team"] == "sanitation-3"
    assert final["closed_at"] is not None
    history = [(t["from_state"], t["to_state"], t["actor"], t["reason"]) for t in final["transitions"]]
    assert history[1:] == [
        ("new", "confirmed", "reviewer-1", "bags on the curb"),
        ("confirmed", "dispatched", "reviewer-1", "nearest crew"),
        ("dispatched", "resolved", "reviewer-1", "collected"),
        ("resolved", "confirmed", "reviewer-1", "still there"),
        ("confirmed", "resolved", "reviewer-1", "collected again"),
        ("resolved", "closed", "reviewer-1", ""),
    ]
    with api.sessions() as session:
        rows = session.scalars(select(CaseTransition).where(CaseTransition.case_id == case_id)).all()
        assert [r.team for r in rows if r.to_state == "dispatched"] == ["sanitation-3"]


def test_invalid_moves_answer_409_and_change_nothing(api: Api) -> None:
    cases = _seed(api)
    url = f"/api/v1/cases/{cases['garbage']}/actions"
    assert api.post(url, json={"action": "resolve"}).status_code == 200
    assert api.post(url, json={"action": "close"}).status_code == 200
    again = api.post(url, json={"action": "confirm"})
    assert again.status_code == 409
    assert "closed" in again.json()["detail"] and "cannot become confirmed" in again.json()["detail"]
    reopen = api.post(url, json={"action": "reopen"})
    assert reopen.status_code == 409 and "final" in reopen.json()["detail"]
    detail = api.get(f"/api/v1/cases/{cases['garbage']}").json()
    assert detail["state"] == "closed" and len(detail["transitions"]) == 3

    # Rejected and restored: reject -> reopen gives "new" again.
    vend = f"/api/v1/cases/{cases['vend']}/actions"
    assert api.post(vend, json={"action": "reject", "reason": "parked car"}).json()["state"] == "rejected"
    assert api.post(vend, json={"action": "reopen"}).json()["state"] == "new"


def test_bad_action_bodies_are_refused_with_a_message(api: Api) -> None:
    case_id = _seed(api)["sign"]
    url = f"/api/v1/cases/{case_id}/actions"
    no_team = api.post(url, json={"action": "dispatch"})
    assert no_team.status_code == 422 and "team" in no_team.json()["detail"]
    blank_team = api.post(url, json={"action": "dispatch", "team": "   "})
    assert blank_team.status_code == 422
    stray_team = api.post(url, json={"action": "confirm", "team": "x"})
    assert stray_team.status_code == 422 and "only for dispatch" in stray_team.json()["detail"]
    unknown = api.post(url, json={"action": "delete"})
    assert unknown.status_code == 422
    extra = api.post(url, json={"action": "confirm", "sneaky": 1})
    assert extra.status_code == 422
    assert api.post("/api/v1/cases/424242/actions", json={"action": "confirm"}).status_code == 404
    assert api.get(f"/api/v1/cases/{case_id}").json()["state"] == "new"
    # a team name is trimmed
    assert api.post(url, json={"action": "dispatch", "team": " east "}).json()["assigned_team"] == "east"


def test_evidence_route_validates_the_digest(api: Api) -> None:
    _seed(api)
    assert api.get("/api/v1/evidence/" + "A" * 64).status_code == 422  # uppercase is not our form
    assert api.get("/api/v1/evidence/" + "a" * 63).status_code == 422
    assert api.get("/api/v1/evidence/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    missing = api.get("/api/v1/evidence/" + "0" * 64)
    assert missing.status_code == 404 and "no evidence" in missing.json()["detail"]


def test_confirming_a_dispatched_case_takes_it_back_from_its_team(api: Api) -> None:
    case_id = _seed(api)["garbage"]
    url = f"/api/v1/cases/{case_id}/actions"
    assert api.post(url, json={"action": "dispatch", "team": "crew-9"}).json()["assigned_team"] == "crew-9"
    back = api.post(url, json={"action": "confirm", "reason": "wrong crew"}).json()
    assert (back["state"], back["assigned_team"]) == ("confirmed", None)
    assert back["transitions"][-1]["from_state"] == "dispatched"  # the history keeps it
    again = api.post(url, json={"action": "dispatch", "team": "crew-2"}).json()
    assert (again["state"], again["assigned_team"]) == ("dispatched", "crew-2")


def test_reopen_a_possibly_resolved_case_returns_it_to_its_earlier_state(api: Api) -> None:
    from server.cases.service import SYSTEM_COVERAGE, transition

    case_id = _seed(api)["garbage"]
    url = f"/api/v1/cases/{case_id}/actions"
    assert api.post(url, json={"action": "dispatch", "team": "crew-9"}).status_code == 200
    with api.sessions.begin() as session:  # what the coverage check does when a patrol passes
        transition(session, case_id, "possibly_resolved", SYSTEM_COVERAGE, "patrol passed, not seen")
    listed = api.get("/api/v1/cases", params={"state": "possibly_resolved"}).json()
    assert _ids(listed) == [case_id]
    response = api.post(url, json={"action": "reopen", "reason": "still overflowing"})
    assert response.status_code == 200, response.text
    reopened = response.json()
    assert reopened["state"] == "dispatched" and reopened["assigned_team"] == "crew-9"
    assert reopened["transitions"][-1]["actor"] == "reviewer-1"
    assert reopened["transitions"][-2]["actor"] == SYSTEM_COVERAGE


def test_evidence_listed_but_gone_from_disk_is_a_json_500_without_paths(api: Api) -> None:
    from pathlib import Path

    sha = store_evidence(api, jpeg(99))
    for stored in Path(api.settings.evidence_dir).rglob(f"{sha}*"):
        stored.unlink()
    response = api.get(f"/api/v1/evidence/{sha}")
    assert response.status_code == 500
    detail = response.json()["detail"]
    assert "cannot be read" in detail and api.settings.evidence_dir not in detail


def _all_pages(api: Api, **params: object) -> list[int]:
    page = api.get("/api/v1/cases", params=params).json()
    seen = [c["id"] for c in page["items"]]
    while page["next_cursor"]:
        page = api.get("/api/v1/cases", params={**params, "cursor": page["next_cursor"]}).json()
        seen += [c["id"] for c in page["items"]]
    return seen


def test_cursor_pages_neither_repeat_nor_skip_while_cases_arrive(api: Api) -> None:
    def new_case(i: int) -> int:
        (outcome,) = ingest(api, make_event(east_m=500 * i, observed_at=NOW + timedelta(seconds=i)))
        assert outcome.case_id is not None
        return outcome.case_id

    ids = [new_case(i) for i in range(7)]
    first = api.get("/api/v1/cases", params={"limit": 3}).json()
    assert [c["id"] for c in first["items"]] == ids[::-1][:3]
    new_case(7), new_case(8)  # two newer cases arrive between the pages
    seen = [c["id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.get("/api/v1/cases", params={"limit": 3, "cursor": cursor}).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]  # every case of the first view once, newest first

    bad = api.get("/api/v1/cases", params={"cursor": "garbage"})
    assert bad.status_code == 422 and "cursor" in bad.json()["detail"]
    both = api.get("/api/v1/cases", params={"cursor": first["next_cursor"], "offset": 3})
    assert both.status_code == 422
    other_sort = api.get("/api/v1/cases", params={"cursor": first["next_cursor"], "sort": "id"})
    assert other_sort.status_code == 422


def test_cursor_pages_through_cases_without_an_sla_last(api: Api) -> None:
    from server.db.models import Case

    ids = []
    for i in range(5):
        (outcome,) = ingest(api, make_event(east_m=500 * i, observed_at=NOW + timedelta(seconds=i)))
        ids.append(outcome.case_id)
    with api.sessions.begin() as session:
        for case_id in ids[1:3]:
            session.get(Case, case_id).sla_due_at = None  # type: ignore[union-attr]
    for sort in ("sla_due_at", "-sla_due_at"):
        seen = _all_pages(api, sort=sort, limit=2)
        assert sorted(seen) == sorted(ids) and len(seen) == len(ids), sort
        assert seen[-2:] == ids[1:3] if sort == "sla_due_at" else seen[-2:] == ids[1:3][::-1]


def test_an_action_on_a_state_the_reviewer_no_longer_sees_is_refused(api: Api) -> None:
    case_id = _seed(api)["sign"]
    url = f"/api/v1/cases/{case_id}/actions"
    # two reviewers saw the case as new; the first confirms
    assert api.post(url, json={"action": "confirm", "expected_state": "new"}).status_code == 200
    late = api.post(url, json={"action": "reject", "expected_state": "new"})
    assert late.status_code == 409 and "confirmed now, not new as seen" in late.json()["detail"]
    detail = api.get(f"/api/v1/cases/{case_id}").json()
    assert detail["state"] == "confirmed" and [t["action"] for t in detail["transitions"][1:]] == ["confirm"]
    # without expected_state the old behaviour stands: the later action applies
    assert api.post(url, json={"action": "reject"}).json()["state"] == "rejected"

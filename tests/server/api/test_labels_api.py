"""Review decisions as training labels: a confirm or reject may name a class; GET /labels lists them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, store_evidence


def _case_with_frames(api: Api, east_m: float, seeds: list[int], *, store: bool = True, **kw: Any) -> int:
    """One case made of one event per seed; every event has a clean frame (stored when ``store``)."""
    case_id = None
    for i, seed in enumerate(seeds):
        frame, crop, clean = jpeg(seed), jpeg(seed + 1000), jpeg(seed + 2000)
        if store:
            for data in (frame, crop, clean):
                store_evidence(api, data)
        event = make_event(
            east_m=east_m,
            observed_at=NOW + timedelta(seconds=i),
            score=0.5 + 0.1 * i,
            evidence=(frame, crop),
            clean=clean,
            **kw,
        )
        (outcome,) = ingest(api, event)
        case_id = outcome.case_id
    assert case_id is not None
    return case_id


def _act(api: Api, case_id: int, **body: Any) -> Any:
    return api.post(f"/api/v1/cases/{case_id}/actions", json=body)


def test_confirm_and_reject_with_and_without_a_label_become_labels(api: Api) -> None:
    confirmed = _case_with_frames(api, 0, [1, 2, 3])
    relabelled = _case_with_frames(api, 500, [10], violation_type="unsealed_truck", detector_class="truck")
    rejected = _case_with_frames(api, 1000, [20])
    unreviewed = _case_with_frames(api, 1500, [30])
    assert len({confirmed, relabelled, rejected, unreviewed}) == 4

    assert _act(api, confirmed, action="confirm").status_code == 200
    answer = _act(api, relabelled, action="reject", label="bus", reason="a city bus, not a truck")
    assert answer.status_code == 200, answer.text
    assert answer.json()["transitions"][-1]["label"] == "bus"
    assert _act(api, rejected, action="reject").status_code == 200

    page = api.get("/api/v1/labels", params={"frames": 2}).json()
    items = {item["case_id"]: item for item in page["items"]}
    assert set(items) == {confirmed, relabelled, rejected}
    assert page["next_after"] is None
    assert (items[confirmed]["decision"], items[confirmed]["label"]) == ("confirmed", None)
    assert (items[relabelled]["decision"], items[relabelled]["label"]) == ("rejected", "bus")
    assert items[relabelled]["reason"] == "a city bus, not a truck"
    assert items[relabelled]["reviewer"] == "reviewer-1"
    assert (items[rejected]["decision"], items[rejected]["label"]) == ("rejected", None)
    # Best two of the three clean frames, highest score first, each fetchable.
    frames = items[confirmed]["frames"]
    assert [f["score"] for f in frames] == [0.7, 0.6]
    assert frames[0]["detector_class"] == "overflow"
    assert frames[0]["box"] == [10.0, 10.0, 50.0, 40.0]
    image = api.get(frames[0]["clean_url"])
    assert image.status_code == 200
    assert image.content == jpeg(3 + 2000)  # the third event scored best


def test_frames_the_server_never_received_are_left_out(api: Api) -> None:
    case_id = _case_with_frames(api, 0, [40], store=False)
    assert _act(api, case_id, action="confirm").status_code == 200
    (item,) = api.get("/api/v1/labels").json()["items"]
    assert item["case_id"] == case_id and item["frames"] == []


def test_a_reopened_rejection_is_no_label_until_decided_again(api: Api) -> None:
    case_id = _case_with_frames(api, 0, [50])
    assert _act(api, case_id, action="reject", label="car").status_code == 200
    assert _act(api, case_id, action="reopen").status_code == 200
    (withdrawn,) = api.get("/api/v1/labels").json()["items"]
    assert (withdrawn["decision"], withdrawn["label"], withdrawn["frames"]) == ("withdrawn", None, [])
    assert _act(api, case_id, action="confirm").status_code == 200
    (item,) = api.get("/api/v1/labels").json()["items"]
    # The label of the undone rejection does not leak into the new decision.
    assert (item["decision"], item["label"]) == ("confirmed", None)


def test_a_label_survives_the_rest_of_the_workflow(api: Api) -> None:
    case_id = _case_with_frames(api, 0, [60])
    assert _act(api, case_id, action="confirm", label="garbage").status_code == 200
    assert _act(api, case_id, action="dispatch", team="east").status_code == 200
    assert _act(api, case_id, action="resolve").status_code == 200
    assert _act(api, case_id, action="reopen").status_code == 200  # resolved -> confirmed, no label given
    (item,) = api.get("/api/v1/labels").json()["items"]
    assert (item["decision"], item["label"]) == ("confirmed", "garbage")


def test_a_case_dispatched_or_resolved_without_a_confirm_is_a_confirmed_label(api: Api) -> None:
    dispatched = _case_with_frames(api, 0, [80])
    resolved = _case_with_frames(api, 500, [81])
    overruled = _case_with_frames(api, 1000, [82])
    untouched = _case_with_frames(api, 1500, [83])
    assert _act(api, dispatched, action="dispatch", team="east").status_code == 200
    assert _act(api, resolved, action="resolve").status_code == 200
    # Sent out, then found to be nothing: the rejection is what stands.
    assert _act(api, overruled, action="dispatch", team="east").status_code == 200
    answer = _act(api, overruled, action="reject", reject_reason="not_a_violation", label="garbage_bin")
    assert answer.status_code == 200, answer.text
    items = {item["case_id"]: item for item in api.get("/api/v1/labels").json()["items"]}
    assert set(items) == {dispatched, resolved, overruled}, untouched
    assert (items[dispatched]["decision"], items[dispatched]["frames"] != []) == ("confirmed", True)
    assert items[resolved]["decision"] == "confirmed"
    assert (items[overruled]["decision"], items[overruled]["label"]) == ("rejected", "garbage_bin")
    # Reopened to new: nothing stands any more, so an earlier export drops it.
    assert _act(api, dispatched, action="reject").status_code == 200
    assert _act(api, dispatched, action="reopen").status_code == 200
    items = {item["case_id"]: item for item in api.get("/api/v1/labels").json()["items"]}
    assert items[dispatched]["decision"] == "withdrawn"


def test_unknown_or_misplaced_labels_are_refused_and_change_nothing(api: Api) -> None:
    case_id = _case_with_frames(api, 0, [70])
    typo = _act(api, case_id, action="confirm", label="trcuk")
    assert typo.status_code == 422
    assert "trcuk" in typo.json()["detail"] and "truck" in typo.json()["detail"]
    misplaced = _act(api, case_id, action="dispatch", team="east", label="truck")
    assert misplaced.status_code == 422
    assert "only for confirm or reject" in misplaced.json()["detail"]
    malformed = _act(api, case_id, action="confirm", label="Truck!")
    assert malformed.status_code == 422
    assert api.get(f"/api/v1/cases/{case_id}").json()["state"] == "new"
    assert api.get("/api/v1/labels").json()["items"] == []


def test_paging_and_since(api: Api) -> None:
    ids = [_case_with_frames(api, 400 * i, [80 + i]) for i in range(5)]
    for case_id in ids:
        assert _act(api, case_id, action="confirm").status_code == 200
    first = api.get("/api/v1/labels", params={"limit": 2}).json()
    assert [item["case_id"] for item in first["items"]] == ids[:2]
    rest: list[int] = []
    after = first["next_after"]
    while after is not None:
        page = api.get("/api/v1/labels", params={"limit": 2, "after": after}).json()
        rest += [item["case_id"] for item in page["items"]]
        after = page["next_after"]
    assert rest == ids[2:]
    future = (NOW + timedelta(days=3650)).isoformat()
    assert api.get("/api/v1/labels", params={"since": future}).json()["items"] == []


def test_event_evidence_shows_the_clean_frame(api: Api) -> None:
    case_id = _case_with_frames(api, 0, [90])
    (event,) = api.get(f"/api/v1/cases/{case_id}").json()["events"]
    assert event["evidence"]["clean_url"].endswith(event["evidence"]["clean_sha256"])
    assert api.get(event["evidence"]["clean_url"]).content == jpeg(90 + 2000)


def test_a_reopen_is_no_confirm_and_a_taken_back_decision_is_listed_as_withdrawn(api: Api) -> None:
    # resolved straight from new, then reopened (-> confirmed): the reopen confirms nothing; the
    # resolve stands for the confirm nobody gave, by its own reviewer and time
    resolved = _case_with_frames(api, 0, [90])
    assert _act(api, resolved, action="resolve", reason="cleared").status_code == 200
    assert _act(api, resolved, action="reopen", reason="still there").status_code == 200
    assert api.get(f"/api/v1/cases/{resolved}").json()["state"] == "confirmed"
    (item,) = api.get("/api/v1/labels").json()["items"]
    assert (item["case_id"], item["decision"], item["reason"]) == (resolved, "confirmed", "cleared")

    # a confirm, resolved, reopened: the confirm stands, with its own reviewer words and time
    confirmed = _case_with_frames(api, 400, [91])
    assert _act(api, confirmed, action="confirm", reason="a truck, uncovered").status_code == 200
    assert _act(api, confirmed, action="resolve").status_code == 200
    assert _act(api, confirmed, action="reopen", reason="back again").status_code == 200
    item = {i["case_id"]: i for i in api.get("/api/v1/labels").json()["items"]}[confirmed]
    assert (item["decision"], item["reason"]) == ("confirmed", "a truck, uncovered")
    history = api.get(f"/api/v1/cases/{confirmed}").json()["transitions"]
    assert [t["action"] for t in history[1:]] == ["confirm", "resolve", "reopen"]

    # a rejection taken back: listed as withdrawn (no frames) so an earlier export drops it
    rejected = _case_with_frames(api, 800, [92])
    assert _act(api, rejected, action="reject", label="car").status_code == 200
    before = api.get("/api/v1/labels").json()["items"]
    assert {i["case_id"]: i["decision"] for i in before}[rejected] == "rejected"
    assert _act(api, rejected, action="reopen").status_code == 200
    after = {i["case_id"]: i for i in api.get("/api/v1/labels").json()["items"]}
    assert after[rejected]["decision"] == "withdrawn" and after[rejected]["frames"] == []
    assert after[rejected]["label"] is None


def test_a_label_boxes_the_object_where_its_clean_frame_shows_it(api: Api) -> None:
    # Seen from a moving van: the evidence is the best frame, the event's box the latest frame's.
    case_id = _case_with_frames(api, 0, [60], evidence_box=(4.0, 8.0, 30.0, 38.0))
    assert _act(api, case_id, action="confirm").status_code == 200
    (item,) = api.get("/api/v1/labels").json()["items"]
    (frame,) = item["frames"]
    assert frame["box"] == [4.0, 8.0, 30.0, 38.0]
    (event,) = api.get(f"/api/v1/cases/{case_id}").json()["events"]
    assert event["box"] == [10.0, 10.0, 50.0, 40.0]
    assert event["evidence"]["box"] == [4.0, 8.0, 30.0, 38.0]

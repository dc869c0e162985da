"""Review data on cases: reject reasons, relabel, corrected and added boxes, attributes, notes and
merges, each an audited step of the case's history; conflicts are 409s that say where the case is."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select

from server.db.models import CaseReview, Event
from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, store_evidence

FRAME = (640, 480)


def _case(api: Api, east_m: float, seeds: list[int], **kw: Any) -> int:
    """A case of one event per seed, each with a stored clean frame of a 640x480 original."""
    case_id = None
    for i, seed in enumerate(seeds):
        frame, crop, clean = jpeg(seed), jpeg(seed + 1000), jpeg(seed + 2000)
        for data in (frame, crop, clean):
            store_evidence(api, data)
        kw.setdefault("box", (100, 100, 300, 260))
        event = make_event(
            east_m=east_m,
            observed_at=NOW + timedelta(seconds=i),
            score=0.5 + 0.1 * i,
            evidence=(frame, crop),
            clean=clean,
            frame_size=FRAME,
            **kw,
        )
        (outcome,) = ingest(api, event)
        case_id = outcome.case_id
    assert case_id is not None
    return case_id


def _act(api: Api, case_id: int, role: str = "reviewer", **body: Any) -> Any:
    return api.post(f"/api/v1/cases/{case_id}/actions", role=role, json=body)


def _truck(api: Api, east_m: float, seeds: list[int]) -> int:
    return _case(api, east_m, seeds, violation_type="unsealed_truck", detector_class="truck")


def test_a_cargo_bed_drawn_on_another_vehicle_is_refused_and_changes_nothing(api: Api) -> None:
    case_id = _truck(api, 0, [1])  # the detector's box: [100, 100, 300, 260]
    beside = {"attributes": {"load": {"value": "uncovered", "box": [400, 100, 520, 180]}}}
    answer = _act(api, case_id, action="annotate", review=beside)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "the load box (the cargo bed only)" in detail
    assert "only 0% of it lies inside the object's box, and at least 50% must" in detail
    assert "the object's box [100.0, 100.0, 300.0, 260.0]" in detail
    # Half over the truck's edge: 50 of its 120 px width lie on the truck.
    astride = {"attributes": {"load": {"value": "uncovered", "box": [250, 100, 370, 180]}}}
    answer = _act(api, case_id, action="annotate", review=astride)
    assert answer.status_code == 422
    assert "only 42% of it lies inside" in answer.json()["detail"]
    assert api.get(f"/api/v1/cases/{case_id}").json()["review"] is None
    # Once the reviewer moves the truck's box there, the same bed is the truck's.
    moved = {"box": [380, 90, 560, 260], **beside}
    answer = _act(api, case_id, action="annotate", review=moved)
    assert answer.status_code == 200, answer.text
    assert answer.json()["review"]["attributes"]["load"]["box"] == [400.0, 100.0, 520.0, 180.0]


def test_review_data_is_stored_shown_and_audited(api: Api) -> None:
    case_id = _truck(api, 0, [1, 2])
    best = max(api.get(f"/api/v1/cases/{case_id}").json()["events"], key=lambda e: e["score"])
    review = {
        "box": [90, 95, 320, 270],
        "added_boxes": [{"class_name": "truck", "box": [400, 100, 630, 300]}],
        "attributes": {"load": {"value": "uncovered", "box": [200, 100, 320, 180]}},
    }
    answer = _act(api, case_id, action="confirm", expected_state="new", reason="open load", review=review)
    assert answer.status_code == 200, answer.text
    detail = answer.json()
    shown = detail["review"]
    assert shown["event_id"] == best["event_id"]  # the best-scoring event's frame by default
    assert (shown["frame_width"], shown["frame_height"]) == FRAME
    assert shown["detector_box"] == [100.0, 100.0, 300.0, 260.0]
    assert shown["box"] == [90.0, 95.0, 320.0, 270.0]
    assert shown["added_boxes"] == [{"class_name": "truck", "box": [400.0, 100.0, 630.0, 300.0]}]
    assert shown["attributes"] == {"load": {"value": "uncovered", "box": [200.0, 100.0, 320.0, 180.0]}}
    assert (
        shown["clean_url"].endswith(best["evidence"]["clean_sha256"]) and shown["updated_by"] == "reviewer-1"
    )
    step = detail["transitions"][-1]
    assert (step["action"], step["actor"], step["reason"], step["to_state"]) == (
        "confirm",
        "reviewer-1",
        "open load",
        "confirmed",
    )
    assert step["details"]["box"] == [90.0, 95.0, 320.0, 270.0] and "added_boxes" in step["details"]

    # Change the class, then redraw only the added boxes: the rest of the review is kept.
    relabel = _act(api, case_id, action="relabel", expected_state="confirmed", label="bus", reason="a bus")
    assert relabel.status_code == 200, relabel.text
    assert relabel.json()["review"]["label"] == "bus" and relabel.json()["state"] == "confirmed"
    redraw = _act(api, case_id, action="annotate", review={"added_boxes": []})
    assert redraw.status_code == 200, redraw.text
    after = redraw.json()
    assert after["review"]["added_boxes"] == [] and after["review"]["box"] == [90.0, 95.0, 320.0, 270.0]
    actions = [(t["action"], t["from_state"], t["to_state"]) for t in after["transitions"][1:]]
    assert actions == [
        ("confirm", "new", "confirmed"),
        ("relabel", "confirmed", "confirmed"),
        ("annotate", "confirmed", "confirmed"),
    ]
    assert after["allowed_actions"] == [
        "reject",
        "dispatch",
        "resolve",
        "relabel",
        "annotate",
        "merge",
        "note",
    ]

    (item,) = api.get("/api/v1/labels").json()["items"]
    assert (item["decision"], item["label"], item["outcome"]) == ("confirmed", "bus", "confirmed")
    assert item["attributes"] == [
        {
            "name": "load",
            "value": "uncovered",
            "class_name": "uncovered_truck_load",
            "box_kind": "part",
            "box": [200.0, 100.0, 320.0, 180.0],
            "violation": True,
        }
    ]
    first = item["frames"][0]
    assert first["reviewed"] is True and first["corrected_box"] == [90.0, 95.0, 320.0, 270.0]
    assert first["event_id"] == best["event_id"]
    assert all(not f["reviewed"] and f["corrected_box"] is None for f in item["frames"][1:])


def test_the_reviewed_frame_leads_the_labels_even_when_it_scored_lowest(api: Api) -> None:
    case_id = _case(api, 0, [10, 11, 12])
    events = sorted(api.get(f"/api/v1/cases/{case_id}").json()["events"], key=lambda e: e["score"])
    lowest = events[0]["event_id"]
    review = {"event_id": lowest, "added_boxes": [{"class_name": "garbage", "box": [0, 0, 50, 50]}]}
    assert (
        _act(api, case_id, action="reject", reject_reason="not_a_violation", review=review).status_code == 200
    )
    (item,) = api.get("/api/v1/labels", params={"frames": 1}).json()["items"]
    assert (item["reject_reason"], item["outcome"]) == ("not_a_violation", "hard_negative")
    (frame,) = item["frames"]
    assert frame["event_id"] == lowest and frame["added_boxes"] == [
        {"class_name": "garbage", "box": [0, 0, 50, 50]}
    ]


def test_reject_reasons_map_to_their_outcomes(api: Api) -> None:
    outcomes = {}
    for i, reason in enumerate(["permitted", "duplicate", "bad_image", "wrong_class", None]):
        case_id = _case(api, 500 * i, [20 + i])
        body: dict[str, Any] = {"action": "reject"}
        if reason:
            body["reject_reason"] = reason
        assert _act(api, case_id, **body).status_code == 200
        outcomes[case_id] = reason
    items = {i["case_id"]: i for i in api.get("/api/v1/labels").json()["items"]}
    expected = {
        "permitted": "permitted",
        "duplicate": "duplicate",
        "bad_image": "bad_image",
        "wrong_class": "wrong_class",
        None: "rejected",
    }
    assert {items[c]["outcome"] for c in outcomes} == set(expected.values())
    for case_id, reason in outcomes.items():
        assert (items[case_id]["reject_reason"], items[case_id]["outcome"]) == (reason, expected[reason])
    assert (
        api.get(f"/api/v1/cases/{next(iter(outcomes))}").json()["transitions"][-1]["reason_code"]
        == "permitted"
    )
    unknown = _act(api, _case(api, 5000, [30]), action="reject", reject_reason="ugly")
    assert unknown.status_code == 422


def test_bad_review_data_is_refused_with_a_message_and_changes_nothing(api: Api) -> None:
    case_id = _truck(api, 0, [40])
    bad: list[tuple[dict[str, Any], str]] = [
        ({"box": [600, 10, 700, 100]}, "not inside the 640x480 frame"),
        ({"box": [50, 50, 40, 80]}, "x1 < x2"),
        (
            {"added_boxes": [{"class_name": "lorry", "box": [0, 0, 10, 10]}]},
            "'lorry' is not a detector class",
        ),
        ({"attributes": {"setup": {"value": "stall"}}}, "not defined for unsealed_truck"),
        ({"attributes": {"load": {"value": "heaped"}}}, "is not one of uncovered"),
        ({"event_id": "00000000-0000-0000-0000-000000000000"}, "is not an event of case"),
    ]
    for review, message in bad:
        answer = _act(api, case_id, action="confirm", review=review)
        assert answer.status_code == 422, (review, answer.text)
        assert message in str(answer.json()["detail"]), (message, answer.text)
    assert _act(api, case_id, action="annotate").status_code == 422  # nothing to annotate
    assert _act(api, case_id, action="relabel").status_code == 422  # no label
    assert _act(api, case_id, action="note", reason="   ").status_code == 422
    assert _act(api, case_id, action="resolve", review={"box": [0, 0, 5, 5]}).status_code == 422
    assert _act(api, case_id, action="confirm", reject_reason="permitted").status_code == 422
    detail = api.get(f"/api/v1/cases/{case_id}").json()
    assert detail["state"] == "new" and len(detail["transitions"]) == 1 and detail["review"] is None
    with api.sessions() as session:
        assert session.scalars(select(CaseReview)).all() == []

    # A vending attribute boxes the object itself: it takes no box of its own.
    vending = _case(api, 900, [41], violation_type="street_vending", detector_class="umbrella")
    part = _act(
        api,
        vending,
        action="annotate",
        review={"attributes": {"setup": {"value": "cart", "box": [0, 0, 9, 9]}}},
    )
    assert part.status_code == 422 and "adjust the case's box" in part.json()["detail"]
    # No clean frame, nothing to draw on.
    (frameless,) = ingest(api, make_event(east_m=3000))
    assert frameless.case_id is not None
    none = _act(api, frameless.case_id, action="annotate", review={"box": [0, 0, 5, 5]})
    assert none.status_code == 422 and "no event with a clean frame" in none.json()["detail"]


def test_a_stale_action_is_a_409_naming_the_state_now(api: Api) -> None:
    case_id = _case(api, 0, [50])
    assert _act(api, case_id, action="confirm", expected_state="new").status_code == 200
    for body in (
        {"action": "reject", "reject_reason": "not_a_violation"},
        {"action": "annotate", "review": {"box": [0, 0, 10, 10]}},
        {"action": "note", "reason": "seen"},
        {"action": "relabel", "label": "garbage"},
    ):
        late = _act(api, case_id, expected_state="new", **body)
        assert late.status_code == 409, late.text
        assert late.json() == {
            "detail": f"case {case_id} is confirmed now, not new as seen: someone acted on it first;"
            " reload it and decide again",
            "case_id": case_id,
            "state": "confirmed",
            "expected_state": "new",
        }
    detail = api.get(f"/api/v1/cases/{case_id}").json()
    assert len(detail["transitions"]) == 2 and detail["review"] is None
    # The workflow's own refusals carry the state too.
    assert _act(api, case_id, action="resolve").status_code == 200
    assert _act(api, case_id, action="close").status_code == 200
    closed = _act(api, case_id, action="annotate", review={"box": [0, 0, 10, 10]})
    assert closed.status_code == 409 and closed.json()["state"] == "closed"
    assert (
        _act(api, case_id, action="note", reason="owner called back").status_code == 200
    )  # notes still work


def test_viewers_and_devices_cannot_act(api: Api) -> None:
    case_id = _case(api, 0, [60])
    for role in ("viewer", "device"):
        for body in (
            {"action": "note", "reason": "hi"},
            {"action": "annotate", "review": {"box": [0, 0, 9, 9]}},
            {"action": "merge", "into_case_id": case_id},
        ):
            assert _act(api, case_id, role=role, **body).status_code == 403
        bulk = api.post(
            "/api/v1/cases/bulk-actions", role=role, json={"action": "note", "case_ids": [case_id]}
        )
        assert bulk.status_code == 403
    assert api.get("/api/v1/review-options", role="device").status_code == 403
    assert len(api.get(f"/api/v1/cases/{case_id}").json()["transitions"]) == 1


def test_a_note_on_a_possibly_resolved_case_does_not_change_where_reopen_goes(api: Api) -> None:
    from server.cases.service import SYSTEM_COVERAGE, transition

    case_id = _case(api, 0, [70])
    assert _act(api, case_id, action="dispatch", team="crew-2").status_code == 200
    with api.sessions.begin() as session:
        transition(session, case_id, "possibly_resolved", SYSTEM_COVERAGE, "patrol passed")
    assert _act(api, case_id, action="note", reason="will check tomorrow").status_code == 200
    reopened = _act(api, case_id, action="reopen")
    assert reopened.status_code == 200 and reopened.json()["state"] == "dispatched"


def test_merge_moves_events_closes_the_duplicate_and_records_both_sides(api: Api) -> None:
    kept = _case(api, 0, [80, 81])
    duplicate = _case(api, 2000, [82, 83, 84], device_id="box-2")
    assert kept != duplicate
    before = api.get(f"/api/v1/cases/{kept}").json()
    drawn = {"added_boxes": [{"class_name": "garbage_bin", "box": [0, 0, 60, 80]}]}
    assert _act(api, duplicate, action="annotate", review=drawn).status_code == 200
    answer = _act(api, duplicate, action="merge", into_case_id=kept, expected_state="new", reason="same pile")
    assert answer.status_code == 200, answer.text
    merged = answer.json()
    assert (merged["state"], merged["merged_into"], merged["event_count"]) == ("closed", kept, 0)
    step = merged["transitions"][-1]
    assert (step["action"], step["reason_code"], step["actor"], step["reason"]) == (
        "merge",
        "duplicate",
        "reviewer-1",
        "same pile",
    )
    assert step["details"]["merged_into"] == kept and step["details"]["events_moved"] == 3
    target = api.get(f"/api/v1/cases/{kept}").json()
    assert target["event_count"] == 5 and target["events_total"] == 5 and target["device_count"] == 2
    assert target["merged_from"] == [duplicate] and target["state"] == "new"
    # What was drawn on the duplicate's frame went with its events.
    assert target["review"]["added_boxes"] == [{"class_name": "garbage_bin", "box": [0.0, 0.0, 60.0, 80.0]}]
    assert merged["review"] is None and step["details"]["review_moved"] is True
    assert target["last_event_at"] >= before["last_event_at"]
    last = target["transitions"][-1]
    assert (last["action"], last["from_state"], last["to_state"]) == ("merge", "new", "new")
    assert last["details"]["merged_from"] == duplicate
    with api.sessions() as session:
        owners = session.scalars(select(Event.case_id)).all()
        assert set(owners) == {kept}

    # The target's own decision still works after the merge step in its history.
    assert _act(api, kept, action="confirm", expected_state="new").status_code == 200
    (item,) = api.get("/api/v1/labels").json()["items"]
    assert item["case_id"] == kept and item["decision"] == "confirmed"


def test_merges_that_make_no_sense_are_refused(api: Api) -> None:
    one = _case(api, 0, [90])
    other_type = _truck(api, 1000, [91])
    closed = _case(api, 2000, [92])
    assert _act(api, closed, action="resolve").status_code == 200
    assert _act(api, closed, action="close").status_code == 200
    assert _act(api, one, action="merge", into_case_id=one).status_code == 422
    mixed = _act(api, one, action="merge", into_case_id=other_type)
    assert mixed.status_code == 422 and "only cases of one violation type" in mixed.json()["detail"]
    into_closed = _act(api, one, action="merge", into_case_id=closed)
    assert into_closed.status_code == 409 and into_closed.json()["state"] == "closed"
    assert _act(api, one, action="merge", into_case_id=999999).status_code == 404
    assert _act(api, one, action="merge", into_case_id=2**40).status_code == 422  # no such id can exist
    assert _act(api, one, action="merge").status_code == 422  # no target
    assert api.get(f"/api/v1/cases/{one}").json()["state"] == "new"


def test_review_options_come_from_the_taxonomy(api: Api) -> None:
    options = api.get("/api/v1/review-options").json()
    assert [r["code"] for r in options["reject_reasons"]] == [
        "not_a_violation",
        "wrong_class",
        "duplicate",
        "bad_image",
        "permitted",
    ]
    (load,) = options["attributes"]["unsealed_truck"]
    assert [v["value"] for v in load["values"]] == [
        "uncovered",
        "partly_covered",
        "covered",
        "empty",
        "closed_body",
    ]
    assert load["box"] == "part"
    # Which loads are violations: the console asks among them on confirm, the others on a rejection.
    assert [v["violation"] for v in load["values"]] == [True, True, False, False, False]
    (mounting,) = options["attributes"]["illegal_signboard"]
    assert {v["violation"] for v in mounting["values"]} == {None}  # not asked by a decision
    (setup,) = options["attributes"]["street_vending"]
    assert [v["value"] for v in setup["values"]] == ["stall", "cart", "goods_on_ground", "umbrella_only"]
    assert "uncovered_truck_load" in options["classes"] and "merge" in options["actions"]


def test_review_options_say_which_actions_each_state_takes_as_a_case_does(api: Api) -> None:
    by_state = api.get("/api/v1/review-options").json()["actions_by_state"]
    assert "close" not in by_state["new"] and "confirm" in by_state["new"]
    assert by_state["closed"] == ["note"]
    # The same answer a case in that state gives for itself.
    case_id = _case(api, 0, [1])
    assert _act(api, case_id, action="confirm").status_code == 200
    detail = api.get(f"/api/v1/cases/{case_id}").json()
    assert by_state[detail["state"]] == detail["allowed_actions"]

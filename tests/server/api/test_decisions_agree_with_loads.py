"""A decision and the load recorded on its truck case must say the same thing: a confirmed truck
with a covered load, or a truck rejected as no violation with an open one, is refused with the
ways out, and nothing of the refused request is kept."""

from __future__ import annotations

from typing import Any

from tests.server.api.conftest import Api
from tests.server.api.test_review_actions import _act, _truck


def _load(api: Api, case_id: int) -> str | None:
    review = api.get(f"/api/v1/cases/{case_id}").json()["review"]
    recorded = (review or {}).get("attributes") or {}
    return recorded["load"]["value"] if "load" in recorded else None


def _with_load(value: str | None) -> dict[str, Any]:
    return {"attributes": {"load": None if value is None else {"value": value, "box": None}}}


def test_a_confirmation_of_a_truck_recorded_as_covered_is_refused_with_the_ways_out(api: Api) -> None:
    sealed = _truck(api, 0, [1])
    assert _act(api, sealed, action="annotate", review=_with_load("covered")).status_code == 200

    refused = _act(api, sealed, action="confirm", expected_state="new")
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert f"case {sealed}'s load is recorded as covered, which is no violation" in detail
    assert "but confirming says it is one: reject it as not_a_violation instead" in detail
    assert detail.endswith("or record the load it has (uncovered or partly_covered)")
    assert api.get(f"/api/v1/cases/{sealed}").json()["state"] == "new"
    # Dispatching says the same as confirming.
    dispatched = _act(api, sealed, action="dispatch", team="north")
    assert dispatched.status_code == 422 and "but dispatching says it is one" in dispatched.json()["detail"]

    # The two ways out: the load it has, in the decision's own review...
    opened = _act(api, sealed, action="confirm", expected_state="new", review=_with_load("partly_covered"))
    assert opened.status_code == 200, opened.text
    assert _load(api, sealed) == "partly_covered"
    # ...or a rejection that keeps the load (after a reopen of another truck, the same way).
    other = _truck(api, 500, [3])
    assert _act(api, other, action="annotate", review=_with_load("closed_body")).status_code == 200
    assert _act(api, other, action="reject", reject_reason="not_a_violation").status_code == 200
    assert _load(api, other) == "closed_body"


def test_a_load_in_the_decision_itself_is_what_is_checked_and_a_refusal_keeps_none_of_it(api: Api) -> None:
    truck = _truck(api, 0, [1])
    assert _act(api, truck, action="annotate", review=_with_load("uncovered")).status_code == 200
    # The request's own load replaces the recorded one before the check: refused, and not kept.
    refused = _act(api, truck, action="confirm", review=_with_load("empty"))
    assert refused.status_code == 422
    assert "is recorded as empty, which is no violation" in refused.json()["detail"]
    assert _load(api, truck) == "uncovered"
    assert [t["action"] for t in api.get(f"/api/v1/cases/{truck}").json()["transitions"]][-1] == "annotate"
    # Rejecting as no violation with the open load recorded is refused the other way round.
    rejected = _act(api, truck, action="reject", reject_reason="not_a_violation")
    assert rejected.status_code == 422
    detail = rejected.json()["detail"]
    assert "is recorded as uncovered, which is a violation" in detail
    assert "but rejecting it as not_a_violation says it is none" in detail
    assert "confirm it, or reject it for another reason instead" in detail
    assert "(covered or empty or closed_body)" in detail
    # A reviewer who cannot tell clears the load in the decision; other reasons take any load.
    cleared = _act(api, truck, action="reject", reject_reason="not_a_violation", review=_with_load(None))
    assert cleared.status_code == 200, cleared.text
    assert _load(api, truck) is None
    blurred = _truck(api, 500, [3])
    assert _act(api, blurred, action="annotate", review=_with_load("uncovered")).status_code == 200
    assert _act(api, blurred, action="reject", reject_reason="bad_image").status_code == 200


def test_a_confirmed_truck_does_not_take_a_covered_load_afterwards(api: Api) -> None:
    truck = _truck(api, 0, [1])
    assert _act(api, truck, action="confirm", review=_with_load("uncovered")).status_code == 200
    late = _act(api, truck, action="annotate", review=_with_load("covered"))
    assert late.status_code == 422
    detail = late.json()["detail"]
    assert "but the case is confirmed as one: reject it as not_a_violation instead" in detail
    assert _load(api, truck) == "uncovered"
    # The way out it names, in one request: the rejection with the load.
    fixed = _act(api, truck, action="reject", reject_reason="not_a_violation", review=_with_load("covered"))
    assert fixed.status_code == 200, fixed.text
    assert (_load(api, truck), api.get(f"/api/v1/cases/{truck}").json()["state"]) == ("covered", "rejected")


def test_a_bulk_confirmation_refuses_the_trucks_whose_load_says_otherwise_and_does_the_rest(api: Api) -> None:
    sealed, unknown = _truck(api, 0, [1]), _truck(api, 500, [3])
    assert _act(api, sealed, action="annotate", review=_with_load("covered")).status_code == 200
    answer = api.post("/api/v1/cases/bulk-actions", json={"action": "confirm", "case_ids": [sealed, unknown]})
    assert answer.status_code == 200, answer.text
    by_case = {r["case_id"]: r for r in answer.json()["results"]}
    assert (by_case[sealed]["status"], by_case[sealed]["state"]) == (422, "new")
    assert "recorded as covered, which is no violation" in by_case[sealed]["detail"]
    assert (by_case[unknown]["status"], by_case[unknown]["state"]) == (200, "confirmed")


def test_a_dispatch_carries_the_load_it_decides_with(api: Api) -> None:
    truck = _truck(api, 0, [1])
    sent = _act(api, truck, action="dispatch", team="north", review=_with_load("uncovered"))
    assert sent.status_code == 200, sent.text
    assert (_load(api, truck), api.get(f"/api/v1/cases/{truck}").json()["state"]) == (
        "uncovered",
        "dispatched",
    )
    # Not with a load that says no violation, as for a confirmation.
    again = _act(api, truck, action="dispatch", team="south", review=_with_load("empty"))
    assert again.status_code == 422 and "but dispatching says it is one" in again.json()["detail"]
    assert _load(api, truck) == "uncovered"

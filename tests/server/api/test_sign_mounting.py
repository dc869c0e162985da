"""How a sign is put up (``mounting``: flush, protruding, free-standing, banner) is what a reviewer
records about a signboard case: offered by the review options, kept with the review, shown to a city's
system through Open311 (with whatever else a reviewer recorded), and exported for training without
taking the sign out of the signboard class."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from server.db.models import Event
from streetwatch.events import EventAttributes, TruckLoad
from tests.server.api.conftest import Api
from tests.server.api.test_review_actions import _act, _case
from tests.server.api.test_reviews_to_training_set import _labels, export_reviews, live_url

__all__ = ["live_url"]  # the fixture, for the export test


def _sign(api: Api, east_m: float, seed: int) -> int:
    return _case(api, east_m, [seed], violation_type="illegal_signboard", detector_class="signboard")


def _description(api: Api, case_id: int) -> str:
    (request,) = api.get(f"/open311/v2/requests/{case_id}.json").json()
    description: str = request["description"]
    return description


def test_a_reviewer_is_offered_the_signs_mounting(api: Api) -> None:
    options = api.get("/api/v1/review-options").json()
    (mounting,) = options["attributes"]["illegal_signboard"]
    assert mounting["name"] == "mounting" and mounting["box"] == "object"
    assert [v["value"] for v in mounting["values"]] == ["flush", "protruding", "free_standing", "banner"]
    assert all(v["class_name"] is None for v in mounting["values"])  # recorded, never boxed


def test_a_protruding_sign_is_recorded_and_open311_says_so(api: Api) -> None:
    case_id = _sign(api, 0, 60)
    assert _description(api, case_id).endswith("(1 report from 1 device)")
    answer = _act(
        api, case_id, action="confirm", review={"attributes": {"mounting": {"value": "protruding"}}}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["review"]["attributes"] == {"mounting": {"value": "protruding", "box": None}}
    assert _description(api, case_id).endswith("(1 report from 1 device); mounting: protruding (reviewed)")

    refused = _act(api, case_id, action="annotate", review={"attributes": {"mounting": {"value": "hanging"}}})
    assert refused.status_code == 422 and "is not one of flush" in refused.text
    boxed = _act(
        api,
        case_id,
        action="annotate",
        review={"attributes": {"mounting": {"value": "flush", "box": [0, 0, 9, 9]}}},
    )
    assert boxed.status_code == 422 and "adjust the case's box" in boxed.text  # it is the sign itself
    cleared = _act(api, case_id, action="annotate", review={"attributes": {"mounting": None}})
    assert cleared.status_code == 200, cleared.text
    assert _description(api, case_id).endswith("(1 report from 1 device)")


def test_a_reviewers_load_replaces_the_boxs_answer_in_open311(api: Api) -> None:
    case_id = _case(api, 3000, [70], violation_type="unsealed_truck", detector_class="truck")
    with api.sessions.begin() as session:  # the box's classifier said uncovered
        event = session.query(Event).filter(Event.case_id == case_id).one()
        said = EventAttributes(load=TruckLoad.uncovered, load_score=0.91, load_model="truck-load 1.1.0")
        event.attributes = said.model_dump(mode="json", exclude_none=True)
    assert _description(api, case_id).endswith("; load: uncovered (0.91)")
    review = {"attributes": {"load": {"value": "partly_covered"}}}
    assert _act(api, case_id, action="confirm", review=review).status_code == 200
    described = _description(api, case_id)
    assert described.endswith("; load: partly covered (reviewed)") and "0.91" not in described


def test_the_mounting_goes_to_the_export_and_the_sign_stays_a_signboard(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case_id = _sign(api, 6000, 80)
    review: dict[str, Any] = {"attributes": {"mounting": {"value": "protruding"}}}
    assert _act(api, case_id, action="confirm", review=review).status_code == 200
    out = export_reviews(api, live_url, tmp_path)
    capsys.readouterr()
    export = json.loads((out / "review_export.json").read_text())
    (record,) = [a for a in export["attributes"] if a["case_id"] == case_id]
    assert (record["name"], record["value"], record["written_as"]) == ("mounting", "protruding", None)
    (boxes,) = _labels(out).values()  # the one reviewed frame
    assert [int(box[0]) for box in boxes] == [3]  # signboard, the trained class id, still


def test_the_queue_lists_the_cases_reviewed_as_protruding(api: Api) -> None:
    """An inspector's sweep: every sign a reviewer called protruding, and nothing else."""
    protruding, flush, unreviewed = (_sign(api, 9000 + 300 * i, 90 + i) for i in range(3))
    truck = _case(api, 12000, [95], violation_type="unsealed_truck", detector_class="truck")
    for case_id, attributes in (
        (protruding, {"mounting": {"value": "protruding"}}),
        (flush, {"mounting": {"value": "flush"}}),
        (truck, {"load": {"value": "uncovered"}}),
    ):
        assert _act(api, case_id, action="annotate", review={"attributes": attributes}).status_code == 200

    def listed(attribute: str) -> list[int]:
        answer = api.get("/api/v1/cases", params={"attribute": attribute, "state": ["new"]})
        assert answer.status_code == 200, answer.text
        return [c["id"] for c in answer.json()["items"]]

    assert listed("mounting:protruding") == [protruding]
    assert listed("mounting:flush") == [flush]
    assert listed("load:uncovered") == [truck]
    assert listed("mounting:banner") == []
    assert unreviewed not in listed("mounting:flush") + listed("mounting:protruding")
    counts = api.get("/api/v1/cases/counts", params={"attribute": "mounting:protruding"}).json()
    assert counts["total"] == 1 and counts["by_type"] == {"illegal_signboard": 1}

    for attribute, complaint in (
        ("mounting:hanging", "mounting 'hanging' is not one of flush, protruding, free_standing, banner"),
        ("colour:red", "no violation type has an attribute 'colour'; known: load, mounting, setup"),
        ("mounting", "attribute"),
    ):
        answer = api.get("/api/v1/cases", params={"attribute": attribute})
        assert answer.status_code == 422 and complaint in answer.text, answer.text

    bulk = {"action": "note", "reason": "sweep on 7 Dec", "filter": {"attribute": "mounting:protruding"}}
    answer = api.post("/api/v1/cases/bulk-actions", json=bulk)
    assert answer.status_code == 200, answer.text
    assert [r["case_id"] for r in answer.json()["results"]] == [protruding]
    typo = api.post(
        "/api/v1/cases/bulk-actions", json={**bulk, "filter": {"attribute": "mounting:Protruding"}}
    )
    assert typo.status_code == 422 and "filter: attribute" in typo.text, typo.text

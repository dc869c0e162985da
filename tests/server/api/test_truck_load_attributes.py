"""A truck's load, as the box's classifier answered it, is stored and shown: event, case, Open311."""

from __future__ import annotations

from datetime import timedelta

from streetwatch.events import EventAttributes, TruckLoad, ViolationEvent
from tests.server.api.conftest import NOW, Api, ingest, jpeg, make_event, store_evidence

WINDOW = {
    "start_date": (NOW - timedelta(days=1)).isoformat(),
    "end_date": (NOW + timedelta(days=1)).isoformat(),
}


def _truck(api: Api, load: TruckLoad, score: float, seed: int, east_m: float = 0.0) -> ViolationEvent:
    frame, crop = jpeg(seed), jpeg(seed + 1)
    store_evidence(api, frame)
    store_evidence(api, crop)
    event = make_event(
        violation_type="unsealed_truck", detector_class="truck", evidence=(frame, crop), east_m=east_m
    )
    attributes = EventAttributes(load=load, load_score=score, load_model="truck-load 1.0.0")
    return event.model_copy(update={"attributes": attributes, "candidate": load is TruckLoad.unsure})


def test_the_load_is_stored_and_shown_on_the_event_the_case_and_open311(api: Api) -> None:
    (outcome,) = ingest(api, _truck(api, TruckLoad.uncovered, 0.91, seed=40))
    case_id = outcome.case_id
    assert case_id is not None

    detail = api.get(f"/api/v1/cases/{case_id}").json()
    expected = {
        "load": "uncovered",
        "load_score": 0.91,
        "load_model": "truck-load 1.0.0",
        "load_likeliest": None,
    }
    assert detail["attributes"] == expected
    assert detail["events"][0]["attributes"] == expected
    listed = api.get("/api/v1/cases", params={"violation_type": "unsealed_truck"}).json()
    assert [c["attributes"] for c in listed["items"]] == [expected]

    (request,) = api.get(f"/open311/v2/requests/{case_id}.json").json()
    assert request["description"].endswith("(1 report from 1 device); load: uncovered (0.91)")
    assert request["service_notice"] is None  # a classified open load is no generic-class guess


def test_an_unsure_load_stays_a_candidate_and_says_so(api: Api) -> None:
    (outcome,) = ingest(api, _truck(api, TruckLoad.unsure, 0.48, seed=50))
    (request,) = api.get(f"/open311/v2/requests/{outcome.case_id}.json").json()
    assert request["description"].endswith("; load: unsure (0.48)")
    assert request["service_notice"] is not None


def test_an_unsure_load_names_what_the_classifier_leaned_to(api: Api) -> None:
    event = _truck(api, TruckLoad.unsure, 0.46, seed=70)
    assert event.attributes is not None
    leaning = event.attributes.model_copy(update={"load_likeliest": TruckLoad.covered})
    (outcome,) = ingest(api, event.model_copy(update={"attributes": leaning}))
    detail = api.get(f"/api/v1/cases/{outcome.case_id}").json()
    assert detail["attributes"]["load_likeliest"] == "covered"
    assert detail["events"][0]["attributes"]["load_likeliest"] == "covered"
    (request,) = api.get(f"/open311/v2/requests/{outcome.case_id}.json").json()
    assert request["description"].endswith("; load: unsure (covered at 0.46)")


def test_events_without_attributes_show_none(api: Api) -> None:
    frame, crop = jpeg(60), jpeg(61)
    store_evidence(api, frame)
    store_evidence(api, crop)
    (outcome,) = ingest(api, make_event(evidence=(frame, crop)))
    detail = api.get(f"/api/v1/cases/{outcome.case_id}").json()
    assert detail["attributes"] is None and detail["events"][0]["attributes"] is None
    (request,) = api.get(f"/open311/v2/requests/{outcome.case_id}.json").json()
    assert "load:" not in request["description"]

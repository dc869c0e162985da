"""Schema 2: the optional ``attributes`` (a truck's load), schema 5 an unsure load's likeliest answer;
events of older boxes still read."""

from __future__ import annotations

import json

import pytest

from streetwatch.errors import PayloadError
from streetwatch.events import SCHEMA_VERSION, TruckLoad, ViolationEvent
from tests.test_events import make_event

LOAD = {"load": "uncovered", "load_score": 0.91, "load_model": "truck-load 1.0.0"}


def _wire(event: ViolationEvent, **changes: object) -> bytes:
    raw = json.loads(event.to_json())
    raw.update(changes)
    return json.dumps(raw).encode()


def test_new_events_are_the_current_version_and_carry_the_load() -> None:
    event = make_event(violation_type="unsealed_truck", detector_class="truck", attributes=LOAD)
    again = ViolationEvent.from_json(event.to_json())
    assert SCHEMA_VERSION == 6 and again.schema_version == 6
    assert again.attributes is not None
    assert again.attributes.load is TruckLoad.uncovered and again.attributes.load_score == 0.91


def test_an_old_box_version_1_event_without_attributes_still_validates() -> None:
    old = json.loads(make_event().to_json())
    old["schema_version"] = 1
    del old["attributes"]  # a version-1 box never sent the field
    event = ViolationEvent.from_json(json.dumps(old).encode())
    assert event.schema_version == 1 and event.attributes is None


def test_version_1_with_attributes_is_refused() -> None:
    event = make_event(attributes=LOAD)
    with pytest.raises(PayloadError, match="attributes need schema_version 2"):
        ViolationEvent.from_json(_wire(event, schema_version=1))


@pytest.mark.parametrize(
    ("attributes", "complaint"),
    [
        ({"load": "uncovered"}, "load and load_score come together"),
        ({"load": "tarp", "load_score": 0.5}, "attributes.load"),
        ({"load": "covered", "load_score": "0.9"}, "attributes.load_score"),  # strict: text is no number
        ({"load": "covered", "load_score": 1.5}, "attributes.load_score"),
        ({"colour": "red"}, "attributes.colour"),  # unknown attributes are refused, not dropped
    ],
)
def test_bad_attributes_are_refused_with_the_reason(attributes: dict[str, object], complaint: str) -> None:
    with pytest.raises(PayloadError, match=complaint):
        ViolationEvent.from_json(_wire(make_event(), attributes=attributes))


def test_an_unknown_version_names_the_versions_this_build_reads() -> None:
    with pytest.raises(PayloadError, match="this build reads 1, 2, 3, 4, 5, 6"):
        ViolationEvent.from_json(_wire(make_event(), schema_version=7))


UNSURE = {"load": "unsure", "load_score": 0.46, "load_model": "truck-load 1.1.0", "load_likeliest": "covered"}


def test_an_unsure_load_names_its_likeliest_answer_from_schema_5_on() -> None:
    event = make_event(
        violation_type="unsealed_truck", detector_class="truck", candidate=True, attributes=UNSURE
    )
    again = ViolationEvent.from_json(event.to_json())
    assert again.attributes is not None and again.attributes.load_likeliest is TruckLoad.covered
    with pytest.raises(PayloadError, match="load_likeliest needs schema_version 5"):
        ViolationEvent.from_json(_wire(event, schema_version=4))
    # A version-4 box's unsure truck, without the field, still reads.
    old = json.loads(_wire(event, schema_version=4))
    del old["attributes"]["load_likeliest"]
    assert ViolationEvent.from_json(json.dumps(old).encode()).attributes is not None


@pytest.mark.parametrize(
    ("attributes", "complaint"),
    [
        ({**UNSURE, "load": "uncovered"}, "load_likeliest goes with load 'unsure' only"),
        ({**UNSURE, "load_likeliest": "unsure"}, "not 'unsure'"),
        ({**UNSURE, "load_likeliest": "tarp"}, "attributes.load_likeliest"),
    ],
)
def test_a_likeliest_answer_that_cannot_be_is_refused(attributes: dict[str, object], complaint: str) -> None:
    with pytest.raises(PayloadError, match=complaint):
        ViolationEvent.from_json(_wire(make_event(), attributes=attributes))

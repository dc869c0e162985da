"""Schema 4: ``object_position``, where a stationary object seen from a moving camera is."""

from __future__ import annotations

import json

import pytest

from streetwatch.errors import PayloadError
from streetwatch.events import ViolationEvent
from tests.test_events import make_event

PLACE = {"lat": 31.2302, "lon": 121.4701, "accuracy_m": 2.5, "along_m": 22.0}


def _wire(**changes: object) -> bytes:
    raw = json.loads(make_event().to_json())
    raw.update(changes)
    return json.dumps(raw).encode()


def test_the_place_is_the_objects_when_the_box_sent_one() -> None:
    event = ViolationEvent.from_json(_wire(object_position=PLACE))
    assert ViolationEvent.from_json(event.to_json()) == event
    assert event.position is not None and event.place is not None
    assert (event.position.lat, event.position.lon) == (31.23, 121.47)  # the camera's stays as sent
    assert (event.place.lat, event.place.lon, event.place.accuracy_m) == (31.2302, 121.4701, 2.5)
    assert event.place.source == "gpx" and event.place.heading_deg == 90.0


def test_without_one_the_place_is_the_cameras() -> None:
    event = ViolationEvent.from_json(_wire())
    assert event.object_position is None
    assert event.place == event.position


@pytest.mark.parametrize("version", [1, 2, 3])
def test_older_versions_still_read_and_may_not_carry_it(version: int) -> None:
    raw = json.loads(make_event().to_json())
    raw["schema_version"] = version
    for field in ("object_position", "attributes"):
        raw.pop(field, None)  # older boxes never sent these
    assert ViolationEvent.from_json(json.dumps(raw).encode()).schema_version == version
    raw["object_position"] = PLACE
    with pytest.raises(PayloadError, match="object_position needs schema_version 4"):
        ViolationEvent.from_json(json.dumps(raw).encode())


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"position": None}, "object_position needs the camera's position"),
        ({"object_position": PLACE | {"lat": 91.0}}, r"object_position\.lat"),
        ({"object_position": PLACE | {"along_m": "22"}}, r"object_position\.along_m"),  # strict
        ({"object_position": PLACE | {"accuracy_m": -1}}, r"object_position\.accuracy_m"),
        ({"object_position": {"lat": 31.2, "lon": 121.4, "accuracy_m": 2.0}}, r"object_position\.along_m"),
        ({"object_position": PLACE | {"side": "left"}}, r"object_position\.side"),
        # Another city: 11 km from the camera (a broken estimate, or a box mixing up its tracks).
        ({"object_position": PLACE | {"lat": 31.33}}, "object_position lies 11,1[0-9]{2} m from the camera"),
    ],
)
def test_a_bad_object_position_is_refused_with_the_reason(changes: dict[str, object], complaint: str) -> None:
    changes = {"object_position": PLACE} | changes
    with pytest.raises(PayloadError, match=complaint):
        ViolationEvent.from_json(_wire(**changes))


def test_a_place_a_few_hundred_metres_ahead_is_believable() -> None:
    far = PLACE | {"lat": 31.2345, "along_m": 500.0}  # 500 m north of the camera
    assert ViolationEvent.from_json(_wire(object_position=far)).object_position is not None

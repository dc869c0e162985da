"""The wire contract: validation, round trip, and the committed JSON Schema."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from streetwatch.errors import PayloadError
from streetwatch.events import MAX_EVENT_BYTES, ViolationEvent
from streetwatch.paths import docs_dir
from streetwatch.schema_cli import render_schema

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


def make_event(**overrides: object) -> ViolationEvent:
    fields: dict[str, object] = {
        "event_id": uuid.uuid4(),
        "device_id": "van-07",
        "track_id": uuid.uuid4(),
        "sequence": 0,
        "lifecycle": "new",
        "violation_type": "garbage_overflow",
        "candidate": False,
        "detector_class": "overflow",
        "score": 0.81,
        "box": (10.0, 20.0, 110.0, 220.0),
        "frame_width": 640,
        "frame_height": 480,
        "observed_at": T0,
        "first_seen_at": T0 - timedelta(seconds=2),
        "frames_seen": 4,
        "position": {
            "lat": 31.23,
            "lon": 121.47,
            "accuracy_m": 3.0,
            "heading_deg": 90.0,
            "speed_mps": 4.2,
            "source": "gpx",
        },
        "model": {"name": "streetwatch-det", "version": "1"},
    }
    fields.update(overrides)
    return ViolationEvent.model_validate(fields)


def test_round_trip_keeps_every_field() -> None:
    event = make_event()
    again = ViolationEvent.from_json(event.to_json())
    assert again == event


def test_times_are_normalised_to_utc() -> None:
    plus8 = timezone(timedelta(hours=8))
    event = make_event(observed_at=T0.astimezone(plus8), first_seen_at=T0.astimezone(plus8))
    assert event.observed_at.utcoffset() == timedelta(0)
    assert event.observed_at == T0


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"schema_version": 99}', "schema_version 99 is newer than this build"),
        (b'{"schema_version": 0}', "unsupported schema_version 0"),
        (b"x" * (MAX_EVENT_BYTES + 1), "limit"),
    ],
)
def test_bad_payloads_say_what_is_wrong(payload: bytes, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        ViolationEvent.from_json(payload)


def test_schema_errors_name_the_field() -> None:
    raw = json.loads(make_event().to_json())
    raw["score"] = 1.5
    raw["device_id"] = "../etc/passwd"
    with pytest.raises(PayloadError) as info:
        ViolationEvent.from_json(json.dumps(raw))
    assert "score" in str(info.value) and "device_id" in str(info.value)


def test_inverted_box_is_rejected() -> None:
    with pytest.raises(ValueError, match="x2 > x1"):
        make_event(box=(100.0, 20.0, 10.0, 220.0))


def test_box_outside_frame_is_rejected() -> None:
    with pytest.raises(ValueError, match="outside"):
        make_event(box=(10.0, 20.0, 900.0, 220.0))


def test_naive_time_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone"):
        make_event(observed_at=datetime(2026, 5, 1, 8, 0))


def test_unknown_fields_are_rejected() -> None:
    raw = json.loads(make_event().to_json())
    raw["colour"] = "red"
    with pytest.raises(PayloadError, match="colour"):
        ViolationEvent.from_json(json.dumps(raw))


def test_committed_schema_matches_the_code() -> None:
    committed = (docs_dir() / "event.schema.json").read_text()
    assert committed == render_schema(), "run: streetwatch schema"

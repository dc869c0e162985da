"""Wire payloads are read strictly: what the published schema forbids is refused with a reason.

Each case below was accepted (converted, or let through to fail in the database) before the
strict reader; each must now raise :class:`PayloadError` naming the problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streetwatch.errors import PayloadError
from streetwatch.events import ViolationEvent, event_json_schema
from streetwatch.messages import TelemetryMessage
from streetwatch.wire_json import load_wire_object
from tests.server.factories import make_event

SCHEMA = json.loads((Path(__file__).parents[1] / "docs" / "event.schema.json").read_text())


def _valid() -> dict[str, Any]:
    event = make_event(
        evidence={
            "frame_sha256": "a" * 64,
            "frame_bytes": 100,
            "crop_sha256": "b" * 64,
            "crop_bytes": 50,
            "captured_at": "2026-05-01T08:00:00Z",
        }
    )
    return json.loads(event.to_json())


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], bytes]:
    def mutate(raw: dict[str, Any]) -> bytes:
        *parents, last = path.split(".")
        target = raw
        for key in parents:
            target = target[key]
        target[last] = value
        return json.dumps(raw).encode()

    return mutate


def _text(old: str, new: str) -> Callable[[dict[str, Any]], bytes]:
    def mutate(raw: dict[str, Any]) -> bytes:
        text = json.dumps(raw)
        assert old in text
        return text.replace(old, new, 1).encode()

    return mutate


HOSTILE: dict[str, tuple[Callable[[dict[str, Any]], bytes], str]] = {
    "score as a string": (_set("score", "0.8"), "score"),
    "candidate as yes": (_set("candidate", "yes"), "candidate"),
    "candidate as 1": (_set("candidate", 1), "candidate"),
    "box of strings": (_set("box", ["10", "20", "110", "220"]), "box.0"),
    "time as a Unix number": (_set("observed_at", 1777622400), "observed_at"),
    "time without a zone": (_set("observed_at", "2026-05-01T08:00:00"), "RFC 3339"),
    "time from year 1 at +14:00": (_set("observed_at", "0001-01-01T00:00:00+14:00"), "observed_at"),
    "time in 2136": (_set("observed_at", "2136-05-01T08:00:00Z"), "2100"),
    "lon as true": (_set("position.lon", True), "position.lon"),
    "schema_version as true": (_set("schema_version", True), "schema_version"),
    "schema_version as 1.0": (_set("schema_version", 1.0), "schema_version"),
    "Infinity in accuracy_m": (_text('"accuracy_m": 3.0', '"accuracy_m": Infinity'), "Infinity"),
    "NaN in score": (_text('"score": 0.8', '"score": NaN'), "NaN"),
    "1e400 in speed_mps": (_text('"accuracy_m": 3.0', '"accuracy_m": 3.0, "speed_mps": 1e400'), "1e400"),
    "NUL in detector_class": (_set("detector_class", "over\u0000flow"), "NUL"),
    "NUL in a key": (_text('"score"', '"sc\\u0000ore"'), "NUL"),
    "lone surrogate in model name": (_set("model.name", "det\ud800"), "surrogate"),
    "integer beyond 64 bits": (_set("sequence", 2**70), "64-bit"),
    "integer beyond a 32-bit column": (_set("frames_seen", 2**31), "frames_seen"),
    "frame wider than a JPEG can be": (_set("frame_width", 70_000), "frame_width"),
    "box outside the frame": (_set("box", [10, 20, 700, 220]), "outside"),
    "duplicate key": (_text('"score": 0.8', '"score": 0.8, "score": 0.1'), "repeats the key 'score'"),
    "900-deep nesting": (_set("model.name", json.loads("[" * 900 + "]" * 900)), "deeper"),
    "UTF-8 byte order mark": (lambda raw: b"\xef\xbb\xbf" + json.dumps(raw).encode(), "byte order mark"),
    "UTF-16": (lambda raw: json.dumps(raw).encode("utf-16-le"), "UTF-16"),
    "UTF-16 with BOM": (lambda raw: json.dumps(raw).encode("utf-16"), "UTF-16"),
    "UTF-32": (lambda raw: json.dumps(raw).encode("utf-32-be"), "UTF-32"),
    "Latin-1": (_set("detector_class", "caf\u00e9"), "UTF-8"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_event_payloads_are_refused_with_a_reason(name: str) -> None:
    mutate, expected = HOSTILE[name]
    payload = mutate(_valid())
    if name == "Latin-1":
        payload = payload.decode().replace("\\u00e9", "\u00e9").encode("latin-1")
    with pytest.raises(PayloadError) as refused:
        ViolationEvent.from_json(payload)
    assert expected in str(refused.value)


def test_deep_nesting_is_refused_before_parsing_without_recursion() -> None:
    deep = b'{"schema_version": 1, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with pytest.raises(PayloadError, match="deeper than 16 levels"):
        ViolationEvent.from_json(deep)
    # Beyond any size limit too: the check itself never recurses.
    deeper = b'{"x": ' + b'[{"a": "]]"}, ' * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(PayloadError, match="deeper than 16 levels"):
        load_wire_object(deeper, "test")
    brackets_in_strings = json.dumps({"s": "[[[[" * 1000, "t": [[1]]}).encode()
    assert load_wire_object(brackets_in_strings, "test")[0]["t"] == [[1]]


def test_a_valid_event_still_round_trips() -> None:
    raw = _valid()
    event = ViolationEvent.from_json(json.dumps(raw).encode())
    assert json.loads(event.to_json()) == raw
    jsonschema.validate(raw, SCHEMA)


def test_times_with_an_offset_are_read_as_utc() -> None:
    raw = _valid()
    raw["observed_at"] = "2026-05-01T16:00:00+08:00"
    event = ViolationEvent.from_json(json.dumps(raw))
    assert event.observed_at.isoformat() == "2026-05-01T08:00:00+00:00"


def test_the_published_schema_refuses_what_the_server_refuses() -> None:
    """The generated schema states the bounds and the required version the reader enforces."""
    validator = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    for name in (
        "score as a string",
        "candidate as yes",
        "box of strings",
        "time as a Unix number",
        "lon as true",
        "integer beyond a 32-bit column",
        "frame wider than a JPEG can be",
        "time without a zone",
    ):
        mutate, _ = HOSTILE[name]
        assert not validator.is_valid(json.loads(mutate(_valid()))), name
    without_version = _valid()
    del without_version["schema_version"]
    assert not validator.is_valid(without_version)
    assert json.loads(json.dumps(event_json_schema())) == SCHEMA


def test_telemetry_is_read_strictly_too() -> None:
    raw = {
        "device_id": "van-07",
        "at": "2026-05-01T08:00:05Z",
        "period_s": 60.0,
        "uptime_s": 10.0,
        "frames": 5,
        "fps": 1.0,
        "coverage": [{"lat": 31.23, "lon": 121.47, "at": "2026-05-01T08:00:05Z"}],
        "outbox": {"events": 0, "evidence": 0, "bytes": 0},
    }
    TelemetryMessage.from_json(json.dumps(raw))
    for path, value in (("frames", "5"), ("fps", True), ("uptime_s", None)):
        with pytest.raises(PayloadError, match=path):
            TelemetryMessage.from_json(json.dumps({**raw, path: value}))
    inf = json.dumps(raw).replace('"fps": 1.0', '"fps": Infinity')
    with pytest.raises(PayloadError, match="Infinity"):
        TelemetryMessage.from_json(inf)


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def _paths(raw: dict[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in raw.items():
        paths.append(prefix + key)
        if isinstance(value, dict):
            paths.extend(_paths(value, prefix + key + "."))
    return paths


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_paths(_valid())), _JSON_VALUES)
def test_any_replaced_value_is_either_valid_by_the_schema_or_refused(path: str, value: Any) -> None:
    """Fuzz: whatever a field is replaced with, the reader accepts only schema-valid events and
    refuses everything else with PayloadError (never another exception, never a silent conversion)."""
    raw = _valid()
    payload = _set(path, value)(raw)  # json.dumps writes NaN/Infinity literals as Python does
    try:
        event = ViolationEvent.from_json(payload)
    except PayloadError:
        return
    accepted = json.loads(payload)
    jsonschema.validate(accepted, SCHEMA)
    assert json.loads(event.to_json()) == json.loads(ViolationEvent.from_json(event.to_json()).to_json())

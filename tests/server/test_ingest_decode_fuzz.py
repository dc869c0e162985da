"""Fuzz: whatever bytes arrive on whatever topic, decode() answers (stored or refused), never raises."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.evidence_store import EvidenceStore
from server.ingest.messages import EvidenceReceived, Rejected, decode
from server.settings import IngestLimits
from streetwatch.events import ViolationEvent, event_json_schema, utcnow
from streetwatch.messages import StatusMessage, TelemetryMessage
from tests.server.factories import make_event

LIMITS = IngestLimits()
TOPICS = [
    "streetwatch/v1/van-01/events",
    "streetwatch/v1/van-01/status",
    "streetwatch/v1/van-01/telemetry",
    "streetwatch/v1/van-01/evidence/" + "a" * 64,
]
_VALID_EVENT: dict[str, Any] = json.loads(make_event().to_json())
_VALID_TELEMETRY: dict[str, Any] = {
    "device_id": "van-01",
    "at": utcnow().isoformat(),
    "period_s": 60.0,
    "uptime_s": 10.0,
    "frames": 5,
    "fps": 1.0,
    "coverage": [{"lat": 31.23, "lon": 121.47, "at": utcnow().isoformat()}],
    "outbox": {"events": 0, "evidence": 0, "bytes": 0},
}
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats()
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_DECODED = (ViolationEvent, StatusMessage, TelemetryMessage, EvidenceReceived, Rejected)


def _mutated(base: dict[str, Any], key: str, value: Any) -> bytes:
    raw = json.loads(json.dumps(base))
    raw[key] = value
    return json.dumps(raw).encode()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(topic=st.sampled_from(TOPICS), payload=st.binary(max_size=300))
def test_random_bytes_are_refused_never_raised(tmp_path: Path, topic: str, payload: bytes) -> None:
    assert isinstance(decode(topic, payload, LIMITS, EvidenceStore(tmp_path)), Rejected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["events", "telemetry"]),
    key=st.sampled_from(sorted(set(_VALID_EVENT) | set(_VALID_TELEMETRY))),
    value=_JSON,
)
def test_any_field_replaced_gives_an_answer(tmp_path: Path, kind: str, key: str, value: Any) -> None:
    base = _VALID_EVENT if kind == "events" else _VALID_TELEMETRY
    payload = _mutated(base, key, value)
    result = decode(f"streetwatch/v1/van-01/{kind}", payload, LIMITS, EvidenceStore(tmp_path))
    assert isinstance(result, _DECODED)
    if isinstance(result, ViolationEvent | TelemetryMessage):
        # Accepted: then what was sent follows the published schema (nothing was converted to fit)
        # and reads back the same from its own JSON.
        schema = event_json_schema() if kind == "events" else TelemetryMessage.model_json_schema()
        jsonschema.validate(json.loads(payload), schema)
        assert type(result).from_json(result.to_json()) == result

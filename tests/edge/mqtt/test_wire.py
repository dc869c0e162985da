"""Topic builders/parsers and the status/telemetry/command wire models."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from streetwatch.errors import PayloadError
from streetwatch.messages import (
    CoveragePoint,
    OutboxDepth,
    StatusMessage,
    TelemetryMessage,
    parse_command_header,
)
from streetwatch.topics import (
    ParsedTopic,
    commands_topic,
    events_topic,
    evidence_topic,
    parse_topic,
    status_topic,
    subscription,
    telemetry_topic,
)

SHA = "ab" * 32
NOW = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


def test_topics_round_trip() -> None:
    assert events_topic("van-07") == "streetwatch/v1/van-07/events"
    assert parse_topic(events_topic("van-07")) == ParsedTopic("van-07", "events")
    assert parse_topic(evidence_topic("van-07", SHA)) == ParsedTopic("van-07", "evidence", SHA)
    for build, kind in (
        (status_topic, "status"),
        (telemetry_topic, "telemetry"),
        (commands_topic, "commands"),
    ):
        assert parse_topic(build("b1")).kind == kind
    assert subscription("events") == "streetwatch/v1/+/events"
    assert subscription("evidence") == "streetwatch/v1/+/evidence/+"
    assert subscription("commands", "b1") == "streetwatch/v1/b1/commands"


@pytest.mark.parametrize(
    ("topic", "message"),
    [
        ("other/v1/b1/events", "not under"),
        ("streetwatch/v1/b+1/events", "invalid device id"),
        ("streetwatch/v1/b1/evidence/../../etc", "64 lowercase hex"),
        ("streetwatch/v1/b1/evidence/" + "AB" * 32, "64 lowercase hex"),
        ("streetwatch/v1/b1/events/extra", "unknown kind"),
        ("streetwatch/v1/b1/secrets", "unknown kind"),
    ],
)
def test_bad_topics_are_named(topic: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        parse_topic(topic)


def test_builders_refuse_ids_that_would_escape_their_topic_level() -> None:
    with pytest.raises(PayloadError, match="cannot be a topic level"):
        events_topic("a/b")
    with pytest.raises(PayloadError, match="hex"):
        evidence_topic("b1", "not-a-hash")


def test_status_and_telemetry_round_trip_and_forbid_unknown_keys() -> None:
    status = StatusMessage(state="online", device_id="b1", software_version="0.1.0", models=[], at=NOW)
    assert StatusMessage.from_json(status.to_json()) == status
    raw = json.loads(status.to_json())
    raw["surprise"] = 1
    with pytest.raises(PayloadError, match="surprise"):
        StatusMessage.from_json(json.dumps(raw))

    report = TelemetryMessage(
        device_id="b1",
        at=NOW,
        period_s=60,
        uptime_s=120,
        frames=600,
        fps=10,
        coverage=[CoveragePoint(lat=31.2, lon=121.4, at=NOW, heading=90)],
        outbox=OutboxDepth(events=1, evidence=2, bytes=300),
        dropped={"evidence_size_limit": 3},
    )
    assert TelemetryMessage.from_json(report.to_json()) == report
    with pytest.raises(PayloadError, match="timezone"):
        TelemetryMessage.from_json(report.to_json().replace(b"+00:00", b"").replace(b"Z", b""))


def test_command_header_is_checked_before_anything_else() -> None:
    header, raw = parse_command_header(b'{"command_id": "c1", "type": "send_telemetry", "x": 1}')
    assert (header.command_id, header.type, raw["x"]) == ("c1", "send_telemetry", 1)
    with pytest.raises(PayloadError, match="command_id"):
        parse_command_header(b'{"type": "send_telemetry"}')
    with pytest.raises(PayloadError, match="JSON object"):
        parse_command_header(b'"send_telemetry"')

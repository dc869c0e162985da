"""Schema 3: ``evidence.box``, where the object is in the evidence frame; version-2 events still read."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from streetwatch.errors import NewerSchemaError, PayloadError
from streetwatch.events import ViolationEvent
from tests.test_events import T0, make_event

SHA = "a" * 64


def _evidence(box: object = (30.0, 25.0, 130.0, 225.0)) -> dict[str, object]:
    return {
        "frame_sha256": SHA,
        "frame_bytes": 1000,
        "crop_sha256": SHA,
        "crop_bytes": 100,
        "captured_at": (T0 - timedelta(seconds=1)).isoformat(),
        "box": box,
    }


def _wire(evidence: dict[str, object], **changes: object) -> bytes:
    raw = json.loads(make_event().to_json())
    raw["evidence"] = evidence
    raw.update(changes)
    return json.dumps(raw).encode()


def test_the_evidence_box_travels_apart_from_the_events_box() -> None:
    event = ViolationEvent.from_json(_wire(_evidence()))
    assert event.evidence is not None
    assert event.evidence.box == (30.0, 25.0, 130.0, 225.0)
    assert event.box == (10.0, 20.0, 110.0, 220.0)  # the latest frame's: another place
    assert ViolationEvent.from_json(event.to_json()) == event


def test_a_version_2_event_without_it_still_reads() -> None:
    evidence = _evidence()
    del evidence["box"]  # a version-2 box never sent the field
    event = ViolationEvent.from_json(_wire(evidence, schema_version=2))
    assert event.evidence is not None and event.evidence.box is None


def test_version_2_with_an_evidence_box_is_refused() -> None:
    with pytest.raises(PayloadError, match=r"evidence\.box needs schema_version 3"):
        ViolationEvent.from_json(_wire(_evidence(), schema_version=2))


@pytest.mark.parametrize(
    ("box", "complaint"),
    [
        ([30.0, 25.0, 700.0, 225.0], r"evidence\.box .* lies outside the 640x480 frame"),
        ([130.0, 25.0, 30.0, 225.0], r"evidence\.box must satisfy x2 > x1"),
        ([30.0, 25.0, 130.0], r"evidence\.box"),
        (["30", 25.0, 130.0, 225.0], r"evidence\.box"),  # strict: text is no number
    ],
)
def test_a_bad_evidence_box_is_refused_with_the_reason(box: object, complaint: str) -> None:
    with pytest.raises(PayloadError, match=complaint):
        ViolationEvent.from_json(_wire(_evidence(box)))


def test_a_newer_version_is_told_apart_from_a_malformed_one() -> None:
    """A box upgraded before its server: the server must keep the event for later, not drop it."""
    with pytest.raises(NewerSchemaError, match="schema_version 7 is newer than this build"):
        ViolationEvent.from_json(_wire(_evidence(), schema_version=7))
    for bad in (0, True, "3"):
        with pytest.raises(PayloadError) as refused:
            ViolationEvent.from_json(_wire(_evidence(), schema_version=bad))
        assert not isinstance(refused.value, NewerSchemaError)

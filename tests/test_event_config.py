"""Schema 6: the optional ``config`` (the configuration installed over the air that the box ran), on
events and in the box's status; events and statuses of older boxes still read."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from streetwatch.errors import PayloadError
from streetwatch.events import ConfigRef, ViolationEvent
from streetwatch.messages import StatusMessage
from tests.test_events import make_event

VAN = {"name": "patrol-van", "version": "7"}


def _wire(event: ViolationEvent, **changes: object) -> bytes:
    raw = json.loads(event.to_json())
    raw.update(changes)
    return json.dumps(raw).encode()


def test_an_event_names_the_configuration_it_was_raised_under() -> None:
    event = make_event().model_copy(update={"config": ConfigRef(**VAN)})
    again = ViolationEvent.from_json(event.to_json())
    assert again.schema_version == 6 and again.config == ConfigRef(name="patrol-van", version="7")
    own_file = ViolationEvent.from_json(make_event().to_json())
    assert own_file.config is None


def test_a_version_5_event_may_not_carry_a_config_and_without_one_still_reads() -> None:
    event = make_event().model_copy(update={"config": ConfigRef(**VAN)})
    with pytest.raises(PayloadError, match="config needs schema_version 6"):
        ViolationEvent.from_json(_wire(event, schema_version=5))
    old = json.loads(make_event().to_json())
    old["schema_version"] = 5
    del old["config"]  # a version-5 box never sent the field
    assert ViolationEvent.from_json(json.dumps(old).encode()).config is None


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"name": "", "version": "7"}, "config.name"),
        ({"name": "patrol-van"}, "config.version"),
        ({"name": "patrol-van", "version": "7", "sha256": "ab"}, "config.sha256"),
        ("patrol-van 7", "config"),
    ],
)
def test_a_bad_config_is_refused_with_the_reason(config: object, complaint: str) -> None:
    with pytest.raises(PayloadError, match=complaint):
        ViolationEvent.from_json(_wire(make_event(), config=config))


def test_the_status_says_which_configuration_the_box_runs_and_older_boxes_say_nothing() -> None:
    at = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
    status = StatusMessage(
        state="online", device_id="van-01", software_version="0.9", at=at, config=ConfigRef(**VAN)
    )
    again = StatusMessage.from_json(status.to_json())
    assert again.config == ConfigRef(name="patrol-van", version="7") and "config" in again.model_fields_set
    own_file = StatusMessage.from_json(status.model_copy(update={"config": None}).to_json())
    assert own_file.config is None and "config" in own_file.model_fields_set  # said: its own file
    older = json.loads(status.to_json())
    del older["config"]
    assert "config" not in StatusMessage.from_json(json.dumps(older)).model_fields_set  # did not say

"""How a reviewed truck case's decision reads as a load label (the import itself runs end to end in
``tests/server/api/test_field_truck_labels.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streetwatch.errors import DatasetError
from training.truck_load.field_labels import import_field_labels, load_label


@pytest.mark.parametrize(
    ("record", "label"),
    [
        ({"attributes": {"load": "empty"}, "decision": "confirmed"}, "open_bed_empty"),
        ({"attributes": {"load": "closed_body"}, "reject_reason": "not_a_violation"}, "closed_body"),
        # A reviewer who names another class says the box is no truck, whatever else was set.
        ({"label": "car", "attributes": {"load": "covered"}, "reject_reason": "wrong_class"}, "not_a_truck"),
        ({"label": "covered_truck_load", "attributes": {"load": "covered"}}, "covered"),  # still a truck
        ({"reject_reason": "wrong_class"}, "not_a_truck"),
        ({"reject_reason": "not_a_violation", "reason": "no truck here, a bus"}, "not_a_truck"),
        # Sealed trucks are no violation either: without a load, the rejection says nothing about it.
        ({"reject_reason": "not_a_violation", "reason": "tarp is on"}, None),
        ({"decision": "confirmed"}, None),
        ({"reject_reason": "bad_image", "attributes": {"load": "uncovered"}}, None),
        ({"reject_reason": "duplicate", "attributes": {"load": "uncovered"}}, None),
    ],
)
def test_a_review_gives_a_load_label_only_when_it_says_one(record: dict[str, Any], label: str | None) -> None:
    assert load_label(record)[0] == label


def test_an_unknown_load_value_is_refused_with_the_values_it_knows() -> None:
    with pytest.raises(DatasetError, match="'half_open' is not one of"):
        load_label({"attributes": {"load": "half_open"}})


def test_an_export_without_provenance_is_refused_with_what_to_do(tmp_path: Path) -> None:
    old = tmp_path / "old-export"
    old.mkdir()
    images = {
        "images/train/reviews__a.jpg": {"reviews": [{"case_id": 3, "outcome": "confirmed", "class": "truck"}]}
    }
    (old / "manifest.json").write_text(json.dumps({"images": images}))
    with pytest.raises(DatasetError, match="export the reviews again"):
        import_field_labels([old], tmp_path / "out")
    with pytest.raises(DatasetError, match=r"no manifest\.json"):
        import_field_labels([tmp_path / "nothing"], tmp_path / "out2")

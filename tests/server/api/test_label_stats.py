"""``GET /stats/labels``: what reviewers recorded with their decisions, per type, attribute and value;
what a retrainer reads before deciding the field labels are enough."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from tests.server.api.conftest import NOW, Api
from tests.server.api.test_review_actions import _act, _case, _truck


def _load(value: str) -> dict[str, Any]:
    return {"attributes": {"load": {"value": value, "box": None}}}


def _by_value(
    answer: dict[str, Any], violation_type: str, attribute: str
) -> dict[str | None, tuple[int, int]]:
    return {
        row["value"]: (row["confirmed"], row["rejected"])
        for row in answer["rows"]
        if (row["violation_type"], row["attribute"]) == (violation_type, attribute)
    }


def test_decided_cases_are_counted_by_the_value_recorded_with_them(api: Api) -> None:
    opened, partly, sealed, unknown, blurred, waiting = (_truck(api, 600 * i, [10 * i]) for i in range(6))
    assert _act(api, opened, action="confirm", review=_load("uncovered")).status_code == 200
    assert _act(api, partly, action="confirm", review=_load("partly_covered")).status_code == 200
    sealed_review = _load("covered")
    assert (
        _act(api, sealed, action="reject", reject_reason="not_a_violation", review=sealed_review).status_code
        == 200
    )
    assert _act(api, unknown, action="confirm").status_code == 200  # "can't tell"
    # A bad image labels nothing, and a case nobody decided yet is not a label either.
    assert (
        _act(api, blurred, action="reject", reject_reason="bad_image", review=_load("uncovered")).status_code
        == 200
    )
    assert _act(api, waiting, action="annotate", review=_load("uncovered")).status_code == 200
    sign = _case(api, 9000, [90], violation_type="illegal_signboard", detector_class="signboard")
    mounting = {"attributes": {"mounting": {"value": "protruding", "box": None}}}
    assert _act(api, sign, action="confirm", review=mounting).status_code == 200

    answer = api.get("/api/v1/stats/labels").json()
    loads = _by_value(answer, "unsealed_truck", "load")
    assert loads == {
        "uncovered": (1, 0),
        "partly_covered": (1, 0),
        "covered": (0, 1),
        "empty": (0, 0),
        "closed_body": (0, 0),
        None: (1, 0),
    }
    flags = {r["value"]: r["violation"] for r in answer["rows"] if r["attribute"] == "load"}
    assert flags == {
        "uncovered": True,
        "partly_covered": True,
        "covered": False,
        "empty": False,
        "closed_body": False,
        None: None,
    }
    assert _by_value(answer, "illegal_signboard", "mounting")["protruding"] == (1, 0)
    assert _by_value(answer, "illegal_signboard", "mounting")[None] == (0, 0)
    assert answer["decided"] == 5  # four trucks and the sign; not the bad image nor the waiting one

    # A case decided again counts once, as it stands now.
    assert (
        _act(api, opened, action="reject", reject_reason="not_a_violation", review=_load("empty")).status_code
        == 200
    )
    loads = _by_value(api.get("/api/v1/stats/labels").json(), "unsealed_truck", "load")
    assert (loads["uncovered"], loads["empty"]) == ((0, 0), (0, 1))


def test_the_window_is_on_the_decision_and_the_csv_holds_the_same_rows(api: Api) -> None:
    truck = _truck(api, 0, [1])
    assert _act(api, truck, action="confirm", review=_load("uncovered")).status_code == 200
    later = (NOW + timedelta(days=3650)).isoformat()
    empty = api.get("/api/v1/stats/labels", params={"since": later}).json()
    assert empty["decided"] == 0 and all(r["confirmed"] == r["rejected"] == 0 for r in empty["rows"])

    answer = api.get("/api/v1/stats/labels", params={"format": "csv"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert list(rows[0]) == ["violation_type", "attribute", "value", "violation", "confirmed", "rejected"]
    (uncovered,) = [r for r in rows if r["attribute"] == "load" and r["value"] == "uncovered"]
    assert (uncovered["confirmed"], uncovered["rejected"], uncovered["violation"]) == ("1", "0", "True")
    assert len(rows) == len(api.get("/api/v1/stats/labels").json()["rows"])
    backwards = api.get("/api/v1/stats/labels", params={"since": later, "until": NOW.isoformat()})
    assert backwards.status_code == 422 and "must be after since" in backwards.text

"""``device_id`` with a trailing ``*``: every box whose id starts so, in each place the filter is taken
(the queue, its counts, bulk actions, events). SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.server.api.conftest import Api, ingest, make_event

#: A depot's vans, a box of another depot, and ids that an unescaped LIKE would mix up ('_' is
#: LIKE's any-one-character).
BOXES = ("d7-van-1", "d7-van-12", "d8-van-1", "a_1", "ab1")


def _cases(api: Api) -> dict[str, int]:
    ids: dict[str, int] = {}
    for i, device_id in enumerate(BOXES):
        (outcome,) = ingest(api, make_event(device_id=device_id, east_m=900.0 * i))
        assert outcome.case_id is not None
        ids[device_id] = outcome.case_id
    return ids


def _listed(api: Api, device_id: str) -> set[int]:
    answer = api.get("/api/v1/cases", params={"device_id": device_id})
    assert answer.status_code == 200, answer.text
    return {item["id"] for item in answer.json()["items"]}


def test_a_trailing_star_takes_every_box_whose_id_starts_so(api: Api) -> None:
    ids = _cases(api)
    assert _listed(api, "d7-*") == {ids["d7-van-1"], ids["d7-van-12"]}
    assert _listed(api, "d7-van-1*") == {ids["d7-van-1"], ids["d7-van-12"]}
    assert _listed(api, "d7-van-1") == {ids["d7-van-1"]}  # without a star: that box alone
    assert _listed(api, "a_*") == {ids["a_1"]}  # '_' is itself, not any character
    assert _listed(api, "x*") == set()
    counts = api.get("/api/v1/cases/counts", params={"device_id": "d7-*"}).json()
    assert counts["total"] == 2
    events = api.get("/api/v1/events", params={"device_id": "d7-van-1*"}).json()["items"]
    assert sorted(e["device_id"] for e in events) == ["d7-van-1", "d7-van-12"]


def test_a_bulk_action_on_a_prefix_acts_on_what_the_queue_listed(api: Api) -> None:
    ids = _cases(api)
    body = {"action": "confirm", "filter": {"device_id": "d7-*"}, "dry_run": True}
    answer = api.post("/api/v1/cases/bulk-actions", json=body)
    assert answer.status_code == 200, answer.text
    assert {r["case_id"] for r in answer.json()["results"]} == _listed(api, "d7-*")
    assert {ids["d7-van-1"], ids["d7-van-12"]} == _listed(api, "d7-*")


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        ("/api/v1/cases", "*", "leave device_id out"),
        ("/api/v1/cases", "d*-van", "only a trailing *"),
        ("/api/v1/cases/counts", "d*7*", "only a trailing *"),
        ("/api/v1/events", "*", "leave device_id out"),
    ],
)
def test_a_star_anywhere_else_is_refused_with_a_reason(api: Api, path: str, value: str, reason: str) -> None:
    answer = api.get(path, params={"device_id": value})
    assert 400 <= answer.status_code < 500, answer.text
    assert reason in answer.json()["detail"]

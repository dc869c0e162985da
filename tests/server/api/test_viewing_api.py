"""``POST /viewing``: each console says which case it shows and hears which cases others have open.
Real requests through the app; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from server.api import viewing
from server.db.models import CaseViewer
from tests.server.api.conftest import Api, ingest, make_event

#: The users the api fixture makes for its roles.
REVIEWER, ADMIN = "reviewer-1", "admin-1"


def _case(api: Api, east_m: float) -> int:
    (outcome,) = ingest(api, make_event(east_m=east_m))
    assert outcome.case_id is not None
    return outcome.case_id


def _say(api: Api, role: str, tab: str, case_id: int | None) -> dict[int, list[str]]:
    answer = api.post("/api/v1/viewing", role=role, json={"tab": tab, "case_id": case_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["fresh_s"] == viewing.FRESH_S
    return {item["case_id"]: item["usernames"] for item in body["cases"]}


def test_each_console_hears_who_else_has_which_case_open_and_never_itself(api: Api) -> None:
    first, second = _case(api, 0), _case(api, 900)
    assert _say(api, "reviewer", "tab-reviewer-1", first) == {}  # nobody else yet
    # The admin opens the same case: told the reviewer is on it; the reviewer is told the same back.
    assert _say(api, "admin", "tab-admin-1", first) == {first: [REVIEWER]}
    assert _say(api, "reviewer", "tab-reviewer-1", first) == {first: [ADMIN]}
    # A second tab of the same person is not "someone else".
    assert _say(api, "reviewer", "tab-reviewer-2", second) == {first: [ADMIN]}
    # The admin moves on to the other case, which the reviewer's second tab shows too.
    assert _say(api, "admin", "tab-admin-1", second) == {first: [REVIEWER], second: [REVIEWER]}
    # The reviewer's first tab goes back to the queue: the first case is nobody's now.
    assert _say(api, "reviewer", "tab-reviewer-1", None) == {second: [ADMIN]}
    assert _say(api, "admin", "tab-admin-1", second) == {second: [REVIEWER]}


def test_a_read_only_viewer_looking_on_is_not_named(api: Api) -> None:
    case_id = _case(api, 0)
    _say(api, "viewer", "tab-viewer-1", case_id)
    assert _say(api, "reviewer", "tab-reviewer-1", case_id) == {}
    # ...while the viewer still hears who is on it.
    assert _say(api, "viewer", "tab-viewer-1", case_id) == {case_id: [REVIEWER]}


def test_a_page_not_heard_from_drops_out(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    case_id = _case(api, 0)
    start = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(viewing, "utcnow", lambda: start)
    _say(api, "admin", "tab-admin-1", case_id)
    later = start + timedelta(seconds=viewing.FRESH_S - 1)
    monkeypatch.setattr(viewing, "utcnow", lambda: later)
    assert _say(api, "reviewer", "tab-reviewer-1", None) == {case_id: [ADMIN]}
    gone = start + timedelta(seconds=viewing.FRESH_S + 1)
    monkeypatch.setattr(viewing, "utcnow", lambda: gone)
    assert _say(api, "reviewer", "tab-reviewer-1", None) == {}


def test_closed_pages_are_swept_when_a_new_page_writes(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def tabs() -> set[str]:
        with api.sessions() as session:
            return set(session.scalars(select(CaseViewer.tab)))

    start = datetime(2026, 6, 1, 9, 0, tzinfo=timezone.utc)
    monkeypatch.setattr(viewing, "utcnow", lambda: start)
    _say(api, "admin", "tab-admin-1", None)  # then closed without a word
    _say(api, "reviewer", "tab-reviewer-1", None)
    later = start + viewing.SWEEP_AFTER + timedelta(seconds=1)
    monkeypatch.setattr(viewing, "utcnow", lambda: later)
    # A heartbeat of a page already known adds no row, so it sweeps nothing.
    _say(api, "reviewer", "tab-reviewer-1", None)
    assert tabs() == {"tab-admin-1", "tab-reviewer-1"}
    # A new page adds one, and takes the closed page's row away; the page still heard from stays.
    _say(api, "reviewer", "tab-reviewer-2", None)
    assert tabs() == {"tab-reviewer-1", "tab-reviewer-2"}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"tab": "tab-admin-1", "case_id": 999999}, 404),  # no such case
        ({"tab": "short", "case_id": None}, 422),
        ({"tab": "has spaces in it", "case_id": None}, 422),
        ({"case_id": None}, 422),
    ],
)
def test_a_bad_heartbeat_is_refused_with_a_reason(api: Api, body: dict[str, object], code: int) -> None:
    answer = api.post("/api/v1/viewing", role="admin", json=body)
    assert answer.status_code == code, answer.text
    assert answer.json()["detail"]

"""Totals on request: a cursor page does not run COUNT(*) unless the client asks for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from tests.server.api.conftest import NOW, Api, ingest, make_event


@contextmanager
def counted_statements(api: Api) -> Iterator[list[str]]:
    """The SQL the app runs meanwhile (through its engine) that counts rows."""
    engine = api.client.app.state.sessions.kw["bind"]  # type: ignore[attr-defined]
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "count(" in statement.lower():
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("path", ["/api/v1/cases", "/api/v1/events"])
def test_cursor_pages_count_only_when_asked(api: Api, path: str) -> None:
    ingest(api, *[make_event(east_m=500 * i, observed_at=NOW + timedelta(seconds=i)) for i in range(5)])
    first = api.get(path, params={"limit": 2}).json()
    assert first["total"] == 5 and first["next_cursor"]  # the first page draws the pager

    with counted_statements(api) as counts:
        later = api.get(path, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert later["total"] is None and len(later["items"]) == 2
    assert counts == []

    with counted_statements(api) as counts:
        asked = api.get(path, params={"limit": 2, "cursor": first["next_cursor"], "count": "true"}).json()
    assert asked["total"] == 5 and asked["items"] == later["items"]
    assert len(counts) == 1

    assert api.get(path, params={"limit": 2, "count": "false"}).json()["total"] is None

"""On SQLite, API reads must not queue behind a writer: ingest batches hold the write lock."""

from __future__ import annotations

import sqlite3
import threading

import httpx
import pytest

from tests.server.api.conftest import Api, ingest, make_event


def test_a_read_answers_while_a_writer_holds_the_lock(api: Api) -> None:
    if not api.settings.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL readers never wait for writers")
    ingest(api, make_event())
    path = api.settings.database_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what an ingest batch holds while it stores messages
    writer.execute("UPDATE cases SET priority = priority")
    answers: list[httpx.Response] = []
    try:
        reader = threading.Thread(target=lambda: answers.append(api.get("/api/v1/cases")))
        reader.start()
        # Without deferred read transactions the request waits out the 30 s busy timeout.
        reader.join(10)
        assert answers, "GET /cases waited for the writer's lock"
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert answers[0].status_code == 200
    assert answers[0].json()["total"] == 1
    # Writes still take the lock up front and go through once it is free.
    case_id = answers[0].json()["items"][0]["id"]
    assert api.post(f"/api/v1/cases/{case_id}/actions", json={"action": "confirm"}).status_code == 200

"""On SQLite, API reads must not queue behind a writer: ingest batches hold the write lock.
(PostgreSQL readers never wait for writers, so this one runs on SQLite only.)"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from server.app import create_app
from server.auth import Role, create_user
from server.db.migrate import upgrade
from server.settings import ServerSettings
from tests.server.api.conftest import NOW, Api, ingest, make_event


def test_a_read_answers_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "streetwatch.db"
    settings = ServerSettings(database_url=f"sqlite:///{path}", evidence_dir=str(tmp_path / "evidence"))
    upgrade(settings.database_url)
    app = create_app(settings)
    with app.state.sessions.begin() as session:
        token = create_user(session, "reviewer-1", Role.reviewer, NOW).token
    with TestClient(app) as client:
        api = Api(client=client, sessions=app.state.sessions, settings=settings, tokens={"reviewer": token})
        ingest(api, make_event())
        writer = sqlite3.connect(path, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")  # what an ingest batch holds while it stores messages
        writer.execute("UPDATE cases SET priority = priority")
        answers: list[httpx.Response] = []

        def read() -> None:
            answers.append(api.get("/api/v1/cases", role="reviewer"))

        try:
            reader = threading.Thread(target=read)
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

"""The console's cookie sign-in, its CSRF check, sign-out, and the live stream of case changes.

On SQLite and PostgreSQL, through the app's real routes; cases come from the ingest's own code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from demo.mosquitto import free_port
from server.app import create_app
from server.auth import Role, create_user, hash_token
from server.db.migrate import upgrade
from server.db.models import ApiToken
from server.ingest.process import ingest_event
from server.settings import ConsoleSettings, ServerSettings
from server.web.cookie import CSRF_HEADER, SESSION_COOKIE
from server.web.live import SHUTDOWN_GRACE_S
from server.web.serving import HttpServer
from tests.server.api.conftest import NOW, make_event

PASSWORD = "a-long-password"


class Site:
    def __init__(self, client: TestClient, sessions: sessionmaker[Session], settings: ServerSettings) -> None:
        self.client = client
        self.sessions = sessions
        self.settings = settings

    def sign_in(self, username: str = "rita") -> str:
        answer = self.client.post("/api/v1/session", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 200, answer.text
        csrf: str = answer.json()["csrf_token"]
        return csrf

    def ingest(self, **fields: Any) -> int:
        with self.sessions.begin() as session:
            now = datetime.now(timezone.utc)
            outcome = ingest_event(session, make_event(**fields), now, settings=self.settings)
        assert outcome.case_id is not None
        return outcome.case_id


def make_site(url: str, tmp_path: Path, console: ConsoleSettings) -> Iterator[Site]:
    settings = ServerSettings(database_url=url, evidence_dir=str(tmp_path / "evidence"), console=console)
    app = create_app(settings)
    sessions: sessionmaker[Session] = app.state.sessions
    with sessions() as session:
        for name, role in (("rita", Role.reviewer), ("vic", Role.viewer), ("box7", Role.device)):
            create_user(session, name, role, NOW, password=PASSWORD)
        session.commit()
    with TestClient(app) as client:
        yield Site(client, sessions, settings)


@pytest.fixture
def site(migrated_url: str, tmp_path: Path) -> Iterator[Site]:
    yield from make_site(migrated_url, tmp_path, ConsoleSettings(live_poll_s=0.05, session_hours=8))


def test_sign_in_sets_an_httponly_strict_cookie_whose_token_ends_with_the_shift(site: Site) -> None:
    answer = site.client.post("/api/v1/session", json={"username": "rita", "password": PASSWORD})
    assert answer.status_code == 200
    assert answer.json()["user"]["username"] == "rita" and len(answer.json()["csrf_token"]) == 64
    cookie = answer.headers["set-cookie"]
    for part in ("HttpOnly", "SameSite=strict", "Path=/", f"Max-Age={8 * 3600}"):
        assert part in cookie, cookie
    assert "Secure" not in cookie
    token = site.client.cookies[SESSION_COOKIE]
    with site.sessions() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == hash_token(token)))
        assert row is not None and row.name == "console sign-in" and row.expires_at is not None
        lifetime = row.expires_at - row.created_at
    assert lifetime == timedelta(hours=8)


def test_wrong_passwords_and_devices_get_no_cookie(site: Site) -> None:
    wrong = site.client.post("/api/v1/session", json={"username": "rita", "password": "nope-nope"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    device = site.client.post("/api/v1/session", json={"username": "box7", "password": PASSWORD})
    assert device.status_code == 403 and "device" in device.json()["detail"]
    assert "set-cookie" not in device.headers
    assert site.client.get("/api/v1/session").json() == {"user": None, "csrf_token": None}


def test_cookie_writes_need_the_pages_csrf_header_and_bearer_writes_do_not(site: Site) -> None:
    case_id = site.ingest()
    csrf = site.sign_in()
    assert site.client.get(f"/api/v1/cases/{case_id}").status_code == 200  # reads need no header
    url = f"/api/v1/cases/{case_id}/actions"
    body = {"action": "note", "reason": "checked"}
    missing = site.client.post(url, json=body)
    assert missing.status_code == 403 and CSRF_HEADER in missing.json()["detail"]
    forged = site.client.post(url, json=body, headers={CSRF_HEADER: "0" * 64})
    assert forged.status_code == 403
    assert site.client.post(url, json=body, headers={CSRF_HEADER: csrf}).status_code == 200

    # A bearer caller (a script) is not a browser: no cookie, no CSRF header needed.
    issued = site.client.post("/api/v1/auth/token", json={"username": "rita", "password": PASSWORD})
    bearer = {"Authorization": f"Bearer {issued.json()['token']}"}
    site.client.cookies.clear()
    assert site.client.post(url, json=body, headers=bearer).status_code == 200
    me = site.client.get("/api/v1/session", headers=bearer).json()
    assert me["user"]["username"] == "rita" and me["csrf_token"] is None


def test_sign_out_revokes_the_token_and_needs_the_header(site: Site) -> None:
    csrf = site.sign_in()
    token = site.client.cookies[SESSION_COOKIE]
    assert site.client.delete("/api/v1/session").status_code == 403  # a cross-site page cannot end it
    assert site.client.get("/api/v1/cases").status_code == 200
    ended = site.client.delete("/api/v1/session", headers={CSRF_HEADER: csrf})
    assert ended.status_code == 204 and SESSION_COOKIE in ended.headers["set-cookie"]
    with site.sessions() as session:
        assert session.scalar(select(ApiToken.revoked).where(ApiToken.token_sha256 == hash_token(token)))
    # The old cookie is dead everywhere, even if a copy of it survives.
    site.client.cookies.set(SESSION_COOKIE, token)
    assert site.client.get("/api/v1/cases").status_code == 401


def test_an_expired_sign_in_is_refused(site: Site) -> None:
    site.sign_in("vic")
    token = site.client.cookies[SESSION_COOKIE]
    with site.sessions.begin() as session:
        session.execute(
            update(ApiToken)
            .where(ApiToken.token_sha256 == hash_token(token))
            .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1))
        )
    assert site.client.get("/api/v1/cases").status_code == 401
    assert site.client.get("/api/v1/session").json()["user"] is None


def read_events(lines: Iterator[str], until: str) -> list[tuple[str, Any]]:
    """(event, data) pairs from an SSE stream up to and including the first ``until`` event."""
    seen: list[tuple[str, Any]] = []
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: ") and name is not None:
            seen.append((name, json.loads(line[len("data: ") :])))
            if name == until:
                return seen
            name = None
    raise AssertionError(f"the stream ended before a {until!r} event: {seen}")


def test_the_live_stream_sends_new_and_changed_cases_and_resumes_from_its_cursor(site: Site) -> None:
    site.sign_in()
    before = site.ingest(east_m=0)
    with site.client.stream("GET", "/api/v1/live/cases?timeout=20") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        ((_, ready),) = read_events(lines, "ready")
        new = site.ingest(east_m=500)
        # Only the change after the stream began: the case from before it is in the page's list.
        (item,) = read_events(lines, "cases")[-1][1]["cases"]
        assert item["id"] == new and item["id"] != before and item["state"] == "new"
        assert "thumbnail_url" in item and "overdue" in item  # the same items GET /cases lists
    cursor = ready["cursor"]
    # Reconnecting with the first cursor (as a browser does with Last-Event-ID) misses nothing.
    with site.client.stream(
        "GET", "/api/v1/live/cases?timeout=5", headers={"Last-Event-ID": cursor}
    ) as again:
        items = read_events(again.iter_lines(), "cases")[-1][1]["cases"]
        assert new in [i["id"] for i in items]


def test_the_live_stream_leaves_out_a_sighting_until_its_second_pass(site: Site) -> None:
    site.sign_in()
    with site.client.stream("GET", "/api/v1/live/cases?timeout=20") as stream:
        lines = stream.iter_lines()
        read_events(lines, "ready")
        sighting = site.ingest(violation_type="street_vending", detector_class="umbrella")  # a patrol's
        garbage = site.ingest(east_m=800)
        (item,) = read_events(lines, "cases")[-1][1]["cases"]
        assert item["id"] == garbage  # the waiting sighting is no case on the page
        again = site.ingest(
            violation_type="street_vending", detector_class="umbrella", source="fixed", device_id="pole-1"
        )
        assert again == sighting  # a fixed camera confirms it: now it is a case
        (item,) = read_events(lines, "cases")[-1][1]["cases"]
        assert (item["id"], item["state"]) == (sighting, "new")


def test_the_live_stream_ends_when_the_session_does(site: Site) -> None:
    site.sign_in("vic")
    token = site.client.cookies[SESSION_COOKIE]
    with site.client.stream("GET", "/api/v1/live/cases?timeout=20") as stream:
        lines = stream.iter_lines()
        read_events(lines, "ready")
        with site.sessions.begin() as session:
            session.execute(
                update(ApiToken).where(ApiToken.token_sha256 == hash_token(token)).values(revoked=True)
            )
        assert read_events(lines, "signed-out")[-1] == ("signed-out", {})


def test_the_console_page_is_served_with_a_policy_that_keeps_it_on_this_server(site: Site) -> None:
    root = site.client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    page = site.client.get("/console/")
    assert page.status_code == 200 and '<script type="module" src="js/app.js">' in page.text
    policy = page.headers["content-security-policy"]
    for rule in ("default-src 'self'", "connect-src 'self'", "img-src 'self' data: blob:;"):
        assert rule in policy
    assert site.client.get("/console/js/app.js").headers["content-type"].startswith("text/javascript")


def test_behind_tls_with_a_city_tile_server(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'console.db'}"  # settings only: one backend is enough
    upgrade(url)
    console = ConsoleSettings(
        cookie_secure=True, tile_url="https://tiles.city.example/osm/{z}/{x}/{y}.png", tile_attribution="City"
    )
    for site in make_site(url, tmp_path, console):
        answer = site.client.post("/api/v1/session", json={"username": "vic", "password": PASSWORD})
        assert "Secure" in answer.headers["set-cookie"]
        # The tile server is the only other origin the page may load images from.
        policy = site.client.get("/console/").headers["content-security-policy"]
        assert "img-src 'self' data: blob: https://tiles.city.example;" in policy
        # (the test client speaks plain HTTP, so it keeps the Secure cookie to itself: use a token)
        token = site.client.post("/api/v1/auth/token", json={"username": "vic", "password": PASSWORD})
        bearer = {"Authorization": f"Bearer {token.json()['token']}"}
        config = site.client.get("/api/v1/console/config", headers=bearer).json()
        assert config["tile_url"] == console.tile_url and config["tile_attribution"] == "City"


def test_a_stopping_server_ends_open_streams_at_once(site: Site) -> None:
    """Ctrl-C with consoles open must not wait for their streams (uvicorn waits for responses)."""
    port = free_port("127.0.0.1")
    config = uvicorn.Config(
        site.client.app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    server = HttpServer(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    issued = site.client.post("/api/v1/auth/token", json={"username": "vic", "password": PASSWORD})
    headers = {"Authorization": f"Bearer {issued.json()['token']}"}
    ended: list[str] = []

    def listen() -> None:
        url = f"http://127.0.0.1:{port}/api/v1/live/cases"
        with httpx.stream("GET", url, headers=headers, timeout=30) as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    ended.append(line)
        ended.append("closed cleanly")

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    while not ended and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ended == ["event: ready"]
    stopped_at = time.monotonic()
    server.should_exit = True
    thread.join(SHUTDOWN_GRACE_S + 5)
    listener.join(5)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < SHUTDOWN_GRACE_S / 2  # ended by the server, not cut off
    assert ended[-1] == "closed cleanly"

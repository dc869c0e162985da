"""Request limits and sign-in: body size (413 unread), throttling (429), equal work for every
failed sign-in, expiring tokens, no token in the access log, safe headers on evidence, and
every refusal counted in /metrics."""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

import server.auth as auth
from server.app import create_app
from server.auth import Role, create_user
from server.db.models import ApiToken, User
from server.db.session import make_engine
from server.settings import ApiSettings, ServerSettings
from streetwatch.cli import main
from tests.server.api.conftest import NOW, Api, jpeg, store_evidence
from tests.server.api.live_server import serve

LIMIT = 64 * 1024


@pytest.fixture
def app(migrated_url: str, tmp_path: Path) -> FastAPI:
    api = ApiSettings(
        max_body_bytes=LIMIT, login_failures_per_user=3, login_attempts_per_address=8, login_window_s=60
    )
    settings = ServerSettings(database_url=migrated_url, evidence_dir=str(tmp_path / "ev"), api=api)
    made = create_app(settings)
    with made.state.sessions.begin() as session:
        create_user(session, "alice", Role.reviewer, NOW, password="alice-password")
        create_user(session, "tokens-only", Role.viewer, NOW)
        create_user(session, "gone", Role.viewer, NOW, password="gone-password")
        session.execute(update(User).where(User.username == "gone").values(disabled=True))
        create_user(session, "prom", Role.viewer, NOW)
    return made


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as running:
        yield running


def sign_in(client: TestClient, username: str, password: str) -> httpx.Response:
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


def refusals(client: TestClient, token: str) -> dict[str, float]:
    text = client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("streetwatch_api_refusals_total{"):
            reason = line.split('reason="')[1].split('"')[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def read_answer(sock: socket.socket, timeout: float, data: bytes = b"") -> bytes:
    """Read (the rest of) one HTTP answer: its headers, then as many body bytes as it declares."""
    sock.settimeout(timeout)
    while not _complete(data):
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _complete(data: bytes) -> bool:
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def test_a_body_over_the_limit_is_refused_before_it_is_read(app: FastAPI) -> None:
    huge = 80 * 1024 * 1024
    with serve(app) as port:
        # Declared length: the answer comes while nearly all of the 80 MiB is still unsent.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {huge}\r\n\r\n".encode()
                + b"{" * 1024
            )
            answer = read_answer(sock, 10)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        # No length (chunked): refused once what arrived passes the limit; the client is stopped.
        sent = 0
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /api/v1/cases/1/actions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            piece = b"4000\r\n" + b" " * 0x4000 + b"\r\n"
            sock.setblocking(False)
            answer = b""
            deadline = time.monotonic() + 20
            while sent < huge and time.monotonic() < deadline:
                with contextlib.suppress(BlockingIOError):
                    answer += sock.recv(65536)
                if answer:
                    break
                try:
                    sock.send(piece)
                    sent += 0x4000
                except BlockingIOError:
                    time.sleep(0.01)
                except (BrokenPipeError, ConnectionResetError):
                    break
            sock.setblocking(True)
            answer = read_answer(sock, 10, answer)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"larger than 65536 bytes" in answer
        assert sent < huge / 4, f"the client got to send {sent} bytes before the refusal"


def test_the_permit_import_takes_photos_up_to_its_own_larger_limit(migrated_url: str, tmp_path: Path) -> None:
    api = ApiSettings(max_body_bytes=LIMIT, max_upload_bytes=4 * LIMIT)
    made = create_app(ServerSettings(database_url=migrated_url, evidence_dir=str(tmp_path / "ev"), api=api))
    with made.state.sessions.begin() as session:
        headers = {"Authorization": f"Bearer {create_user(session, 'rita', Role.reviewer, NOW).token}"}
    listed = "permit_id,lat,lon\nSB-1,21.0285,105.8542\n"

    def photo(size: int) -> dict[str, str]:
        return {"big.jpg": base64.b64encode(b"x" * size).decode()}

    with TestClient(made) as client:
        taken = client.post(
            "/api/v1/signs/import",
            headers=headers,
            json={"format": "csv", "text": listed, "photos": photo(2 * LIMIT)},
        )
        assert taken.status_code == 200, taken.text  # over max_body_bytes, under max_upload_bytes
        assert taken.json()["added"] == 1
        too_big = client.post(
            "/api/v1/signs/import",
            headers=headers,
            json={"format": "csv", "text": listed, "photos": photo(4 * LIMIT)},
        )
        assert too_big.status_code == 413
        assert (
            too_big.json()["detail"] == f"request body larger than {4 * LIMIT} bytes (api.max_upload_bytes)"
        )
        other = client.post("/api/v1/signs", headers=headers, json={"description": "x" * (2 * LIMIT)})
        assert other.status_code == 413 and "small JSON bodies only" in other.json()["detail"]


def test_refusals_are_counted_in_metrics(app: FastAPI, client: TestClient) -> None:
    with app.state.sessions.begin() as session:
        token = create_user(session, "scraper", Role.viewer, NOW).token
    before = refusals(client, token)
    assert before["body_too_large"] == 0 and before["login_failed"] == 0
    assert client.post("/api/v1/auth/token", content=b"{" * (LIMIT + 1)).status_code == 413
    assert sign_in(client, "alice", "wrong").status_code == 401
    assert client.get("/api/v1/cases", headers={"Authorization": "Bearer nope"}).status_code == 401
    viewer = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/cases/9223372036854775808", headers=viewer).status_code == 422
    after = refusals(client, token)
    assert after["body_too_large"] == 1
    assert after["login_failed"] == 1
    assert after["unauthorized"] == 1
    assert after["invalid_request"] == 1


def test_sign_in_is_throttled_per_user_name_whether_or_not_it_exists(client: TestClient) -> None:
    for name in ("alice", "nobody-by-that-name"):
        for _ in range(3):
            assert sign_in(client, name, "wrong").status_code == 401
        refused = sign_in(client, name, "wrong")
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "try again in" in refused.json()["detail"]
    # Even the right password waits: the attacker must not learn it in the meantime.
    assert sign_in(client, "alice", "alice-password").status_code == 429


def test_sign_in_is_throttled_per_address_across_names(client: TestClient) -> None:
    answers = [sign_in(client, f"name-{i}", "wrong").status_code for i in range(10)]
    assert answers[:8] == [401] * 8
    assert answers[8:] == [429, 429]


def test_every_failed_sign_in_costs_one_scrypt_check_and_answers_the_same(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = auth._scrypt

    def counting(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        calls.append(n)
        return real(password, salt, n, r, p)

    monkeypatch.setattr(auth, "_scrypt", counting)
    answers = {}
    for name, password in [
        ("alice", "wrong-password"),  # exists, wrong password
        ("no-such-user", "wrong-password"),  # does not exist
        ("tokens-only", "wrong-password"),  # exists without a password
        ("gone", "gone-password"),  # disabled, right password
    ]:
        calls.clear()
        response = sign_in(client, name, password)
        answers[name] = (response.status_code, response.json())
        assert calls == [2**14], f"{name}: scrypt runs {calls}"
    assert len(set(map(repr, answers.values()))) == 1, answers


def test_sign_in_tokens_expire_and_say_when(app: FastAPI, client: TestClient) -> None:
    answer = sign_in(client, "alice", "alice-password")
    assert answer.status_code == 201
    body = answer.json()
    expires_at = body["expires_at"]
    assert expires_at is not None
    headers = {"Authorization": f"Bearer {body['token']}"}
    assert client.get("/api/v1/users/me", headers=headers).status_code == 200
    with app.state.sessions.begin() as session:
        row = session.scalar(select(ApiToken).where(ApiToken.name == "sign-in"))
        assert row is not None and row.expires_at is not None
        lifetime = row.expires_at - row.created_at
        assert lifetime == timedelta(hours=app.state.settings.api.token_lifetime_h)
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == row.id)
            .values(expires_at=row.created_at - timedelta(seconds=1))
        )
    refused = client.get("/api/v1/users/me", headers=headers)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]
    # Tokens an admin made without an expiry (and every token from before 0008) keep working.
    with app.state.sessions.begin() as session:
        assert (
            session.scalar(select(ApiToken.expires_at).where(ApiToken.name == "created with the user"))
            is None
        )


def test_open311_api_key_never_reaches_the_access_log(app: FastAPI, caplog: pytest.LogCaptureFixture) -> None:
    with app.state.sessions.begin() as session:
        token = create_user(session, "hotline", Role.viewer, NOW).token
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    with serve(app) as port:
        answer = httpx.get(f"http://127.0.0.1:{port}/open311/v2/services.json", params={"api_key": token})
        assert answer.status_code == 200
        deadline = time.monotonic() + 5
        while (
            not any("services.json" in r.getMessage() for r in caplog.records) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("services.json?api_key=[redacted]" in line for line in lines), lines
    assert not any(token in line or token[4:20] in line for line in lines)


def test_evidence_is_served_with_nosniff_and_a_locked_down_policy(api: Api) -> None:
    sha = store_evidence(api, jpeg(7))
    for path in (f"/api/v1/evidence/{sha}", f"/api/v1/evidence/{sha}/thumbnail"):
        answer = api.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "default-src 'none'" in answer.headers["content-security-policy"]
        assert "sandbox" in answer.headers["content-security-policy"]
        cached = api.client.get(
            path, headers={**api.headers("viewer"), "If-None-Match": answer.headers["etag"]}
        )
        assert cached.status_code == 304 and cached.headers["x-content-type-options"] == "nosniff"
    assert api.get("/api/v1/cases").headers["x-content-type-options"] == "nosniff"
    assert api.get("/api/v1/cases", role=None).headers["x-content-type-options"] == "nosniff"


def test_admin_made_tokens_expire_only_when_asked(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(f"database_url: {db_url}\nevidence_dir: {tmp_path / 'ev'}\n")
    assert main(["server", "migrate", "--config", str(config)]) == 0
    assert main(["user", "create", "prometheus", "--role", "viewer", "--config", str(config)]) == 0
    assert "does not expire" in capsys.readouterr().err
    assert main(["user", "token", "prometheus", "--expires-in-days", "2", "--config", str(config)]) == 0
    assert "expires 20" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["user", "token", "prometheus", "--expires-in-days", "0", "--config", str(config)])
    assert "above 0" in capsys.readouterr().err
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(ApiToken.created_at, ApiToken.expires_at).order_by(ApiToken.id)
            ).all()
    finally:
        engine.dispose()
    assert rows[0].expires_at is None
    assert rows[1].expires_at is not None
    assert abs((rows[1].expires_at - rows[1].created_at) - timedelta(days=2)) < timedelta(seconds=1)

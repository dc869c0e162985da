"""The sign-in throttle's windows, kept in the database (SQLite and PostgreSQL), with a clock the test
moves: every API process sees the same counts, and no user name is stored."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from server.app import create_app
from server.auth import Role, create_user
from server.db.models import LoginAttempt
from server.login_throttle import LoginThrottle
from server.settings import ApiSettings, ServerSettings


def record(sessions: sessionmaker[Session], throttle: LoginThrottle, *args: Any, **kwargs: Any) -> None:
    with sessions.begin() as session:
        throttle.record(session, *args, **kwargs)


def ask(sessions: sessionmaker[Session], throttle: LoginThrottle, *args: str) -> tuple[int, str] | None:
    with sessions() as session:
        return throttle.retry_after(session, *args)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 5, 0, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_failures_per_user_slide_out_of_the_window(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    throttle = LoginThrottle(failures_per_user=2, attempts_per_address=100, window_s=60, clock=clock)
    record(sessions, throttle, "alice", "10.0.0.1", succeeded=False)
    clock.advance(10)
    record(sessions, throttle, "alice", "10.0.0.2", succeeded=False)
    assert ask(sessions, throttle, "alice", "10.0.0.3") == (50, "user")  # the first leaves in 50 s
    assert ask(sessions, throttle, "bob", "10.0.0.3") is None
    clock.advance(50)
    assert ask(sessions, throttle, "alice", "10.0.0.3") is None


def test_successes_count_only_against_the_address(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    throttle = LoginThrottle(failures_per_user=1, attempts_per_address=3, window_s=60, clock=clock)
    for _ in range(3):
        record(sessions, throttle, "alice", "10.0.0.1", succeeded=True)
    assert ask(sessions, throttle, "alice", "10.0.0.2") is None
    assert ask(sessions, throttle, "alice", "10.0.0.1") == (60, "address")


def test_rows_leave_with_the_window_and_hold_no_name(sessions: sessionmaker[Session]) -> None:
    clock = Clock()
    throttle = LoginThrottle(failures_per_user=5, attempts_per_address=50, window_s=60, clock=clock)
    for i in range(20):
        record(sessions, throttle, f"hunter2-typed-as-name-{i}", "10.0.0.1", succeeded=False)
    with sessions() as session:
        keys = session.scalars(select(LoginAttempt.key)).all()
    assert len(keys) == 40 and not any("hunter2" in key for key in keys)  # hashes only
    clock.advance(61)
    record(sessions, throttle, "alice", "10.0.0.9", succeeded=True)  # any later attempt clears the old ones
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(LoginAttempt)) == 1


def test_two_api_processes_share_the_count(migrated_url: str) -> None:
    """Two apps on one database, as two processes behind one port: failures on one count on the
    other, and a restart (a third app) does not forget them."""
    settings = ServerSettings(
        database_url=migrated_url, api=ApiSettings(login_failures_per_user=3, login_attempts_per_address=100)
    )
    first, second = create_app(settings), create_app(settings)
    sessions: sessionmaker[Session] = first.state.sessions
    with sessions() as session:
        create_user(session, "rita", Role.reviewer, datetime.now(timezone.utc), password="correct-horse-7")
        session.commit()
    wrong = {"username": "rita", "password": "not-it"}
    with TestClient(first) as a, TestClient(second) as b:
        assert a.post("/api/v1/auth/token", json=wrong).status_code == 401
        assert b.post("/api/v1/auth/token", json=wrong).status_code == 401
        assert a.post("/api/v1/auth/token", json=wrong).status_code == 401
        refused = b.post("/api/v1/auth/token", json={"username": "rita", "password": "correct-horse-7"})
        assert refused.status_code == 429 and "for this user name" in refused.json()["detail"]
    with TestClient(create_app(settings)) as restarted:
        again = restarted.post("/api/v1/auth/token", json={"username": "rita", "password": "correct-horse-7"})
        assert again.status_code == 429 and int(again.headers["Retry-After"]) > 0

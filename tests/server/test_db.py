"""Engine and session factory: SQLite pragmas, URL handling, UTC timestamps, concurrent writers."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session, sessionmaker

from server.db.migrate import upgrade
from server.db.models import Device, Rejection
from server.db.session import SQLITE_BUSY_TIMEOUT_MS, make_engine, session_factory
from streetwatch.errors import ConfigError


def test_sqlite_runs_in_wal_with_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'nested' / 'db.sqlite'}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
    finally:
        engine.dispose()
    assert (tmp_path / "nested" / "db.sqlite").exists()  # the folder was created


def test_postgres_urls_use_psycopg_3() -> None:
    engine = make_engine("postgresql://user:secret@127.0.0.1:1/nowhere")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.mark.parametrize("url", ["mysql://x@y/z", "not a url"])
def test_unsupported_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="URL"):
        make_engine(url)


@pytest.mark.parametrize("url", ["postgresql://ops:hunter2@db:notaport/sw", "mysql://ops:hunter2@db/sw"])
def test_database_url_errors_do_not_repeat_the_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(url)
    assert "ops" in str(caught.value)  # the message still says which URL
    assert "hunter2" not in str(caught.value)


def test_timestamps_come_back_as_utc_on_both_backends(sessions: sessionmaker[Session]) -> None:
    plus8 = timezone(timedelta(hours=8))
    local = datetime(2026, 5, 1, 16, 30, tzinfo=plus8)
    with sessions.begin() as session:
        session.add(Device(device_id="van-01", first_seen_at=local, last_seen_at=local, status="online"))
    with sessions() as session:
        device = session.get(Device, "van-01")
        assert device is not None
        assert device.last_seen_at == datetime(2026, 5, 1, 8, 30, tzinfo=timezone.utc)
        assert device.last_seen_at.utcoffset() == timedelta(0)


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(StatementError, match="naive datetime"), sessions.begin() as session:
        session.add(Rejection(reason="x", count=1, last_at=datetime(2026, 5, 1, 8, 0)))
        session.flush()


def test_foreign_keys_are_enforced(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match=r"(?i)foreign key"), sessions.begin() as session:
        session.execute(
            text(
                "INSERT INTO case_transitions (case_id, from_state, to_state, actor, reason, at) "
                "VALUES (424242, NULL, 'new', 'test', '', :at)"
            ),
            {"at": datetime(2026, 5, 1, tzinfo=timezone.utc)},
        )


def test_concurrent_sqlite_writers_queue_instead_of_failing(tmp_path: Path) -> None:
    """Read-then-write transactions from two threads: BEGIN IMMEDIATE makes the second wait."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = session_factory(engine)
    now = datetime(2026, 5, 1, tzinfo=timezone.utc)
    with sessions.begin() as session:
        session.add(Rejection(reason="counter", count=0, last_at=now))
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def bump() -> None:
        try:
            barrier.wait()
            for _ in range(25):
                with sessions.begin() as session:
                    row = session.scalars(select(Rejection).where(Rejection.reason == "counter")).one()
                    row.count += 1  # a read, then a write: the classic "database is locked" pattern
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        with sessions() as session:
            assert session.get(Rejection, "counter").count == 100  # type: ignore[union-attr]
    finally:
        engine.dispose()

"""Engines and sessions: SQLite (WAL, foreign keys, busy timeout) by default, PostgreSQL by URL.

    engine = make_engine("sqlite:///var/streetwatch.db")
    Session = session_factory(engine)
    with Session.begin() as session:
        ...

SQLite transactions start with ``BEGIN IMMEDIATE``: the write lock is taken up
front, so two writers queue on the busy timeout instead of one of them failing
with "database is locked" when it upgrades a read transaction to a write.
Sessions from :func:`read_session_factory` start deferred instead: in WAL mode a
reader sees the last commit without waiting for a writer, so API reads do not
queue behind ingest batches. They must not write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from server.settings import url_without_password
from streetwatch.errors import ConfigError

#: How long an SQLite writer waits for another one before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str | URL, *, echo: bool = False, pool_size: int = 5) -> Engine:
    """An engine for ``url`` with the pragmas and driver the server relies on.

    ``postgresql://`` URLs are switched to the psycopg 3 driver. For a file-backed
    SQLite URL the parent folder is created.
    """
    parsed = _normalise(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(parsed, echo=echo, pool_size=pool_size, pool_pre_ping=True)
    raise ConfigError(
        f"unsupported database URL {parsed.render_as_string()!r}: use sqlite:/// or postgresql://"
    )


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def read_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for reads only: on SQLite their transactions do not take the write lock."""
    return sessionmaker(bind=engine.execution_options(sqlite_deferred=True), expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _normalise(url: str | URL) -> URL:
    try:
        parsed = make_url(url)
    except Exception as exc:  # SQLAlchemy raises ArgumentError with little context
        raise ConfigError(f"invalid database URL {url_without_password(str(url))!r}: {exc}") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" hook issue BEGIN itself (pysqlite would otherwise
        # start deferred transactions on its own).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # synchronous stays FULL: messages are acked after commit, so a commit must survive power loss.
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        deferred = connection.get_execution_options().get("sqlite_deferred", False)
        connection.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

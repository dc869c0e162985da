"""Fixtures for server tests: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL comes from ``scripts/postgres.sh start`` (scripts/test.sh evals it),
which exports ``STREETWATCH_TEST_PG_URL``; each test gets its own schema there.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from server.db.migrate import upgrade
from server.db.session import make_engine, session_factory

PG_ENV = "STREETWATCH_TEST_PG_URL"


def _pg_schema_url(base_url: str, schema: str) -> str:
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (no tables yet) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'streetwatch.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f'{PG_ENV} is not set; run `eval "$(scripts/postgres.sh start)"` first')
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield _pg_schema_url(base, schema)
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run; each test's database starts as a copy of it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "streetwatch.db"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as connection:  # everything in the main file, nothing in a -wal beside it
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def migrated_url(db_url: str, request: pytest.FixtureRequest) -> str:
    """A database URL with the schema at the latest migration. On SQLite a copy of a file the
    migrations made once this run (the same schema; tests/server/test_migrations.py runs the
    migrations themselves on both backends), on PostgreSQL the migrations in the test's schema."""
    if db_url.startswith("sqlite:///"):
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, make_url(db_url).database or "")
    else:
        upgrade(db_url)
    return db_url


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    eng = make_engine(migrated_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)

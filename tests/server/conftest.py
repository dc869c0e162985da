"""Fixtures for server tests: a fresh database per test, on SQLite and on PostgreSQL.

PostgreSQL comes from ``scripts/postgres.sh start`` (scripts/test.sh evals it),
which exports ``STREETWATCH_TEST_PG_URL``; each test gets its own schema there.
"""

from __future__ import annotations

import os
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


@pytest.fixture
def migrated_url(db_url: str) -> str:
    """A database URL with the schema at the latest migration."""
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

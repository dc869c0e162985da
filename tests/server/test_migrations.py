"""Migrations go up and down on both backends and match the ORM models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from server.db.migrate import current_revision, downgrade, head_revision, upgrade
from server.db.models import Base
from server.db.session import make_engine

TABLES = {
    "devices",
    "users",
    "api_tokens",
    "cases",
    "case_transitions",
    "case_reviews",
    "events",
    "evidence",
    "rejections",
    "telemetry_points",
    "ingest_workers",
    "command_replies",
    "rollouts",
    "rollout_targets",
    "signs",
    "sign_sightings",
    "teams",
    "login_attempts",
    "case_viewers",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_creates_every_table_and_downgrade_removes_them(db_url: str) -> None:
    assert current_revision(db_url) is None
    upgrade(db_url)
    assert current_revision(db_url) == head_revision()
    assert _tables(db_url) == TABLES
    downgrade(db_url, "base")
    assert current_revision(db_url) is None
    assert _tables(db_url) == set()
    upgrade(db_url)  # and up again on the same database
    assert _tables(db_url) == TABLES


def test_models_match_the_latest_migration(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations differ; add a migration: {diff}"

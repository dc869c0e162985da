"""Storage: SQLAlchemy 2 models, engine/session factory and programmatic Alembic migrations."""

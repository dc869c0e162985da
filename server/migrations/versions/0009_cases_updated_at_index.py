"""Index ``cases.updated_at``: the console's live stream asks "what changed since t?" every second.

Each open console polls ``WHERE updated_at > t`` (server/web/live.py); without the index that
is a scan of every case per console per poll.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 05:10:00
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_cases_updated_at", "cases", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_cases_updated_at", table_name="cases")

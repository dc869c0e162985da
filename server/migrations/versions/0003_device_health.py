"""Device health: the newest telemetry report of each box (fps, outbox backlog, drops,
temperatures), so operators see a struggling box before its cases go missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 14:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("health", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("health_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("health_at")
        batch.drop_column("health")

"""Ingest workers heartbeat into ``ingest_workers``: /metrics shows how long ago each was last
seen, so a stopped worker (whose share of messages queues in its broker session) is visible.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_workers",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("connected", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_ingest_workers")),
    )


def downgrade() -> None:
    op.drop_table("ingest_workers")

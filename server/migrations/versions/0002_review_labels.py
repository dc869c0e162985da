"""Review labels: events keep the hash of their clean frame (nothing drawn on it) and a confirm
may name the detector class the reviewer says the object is. Together they make reviewed cases
exportable as training data.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 14:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("clean_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("case_transitions") as batch:
        batch.add_column(sa.Column("label", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_transitions") as batch:
        batch.drop_column("label")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("clean_sha256")

"""Case transitions record the reviewer's action: a reopen that lands on ``confirmed`` is not a
confirm, and only real confirms and rejects may become training labels.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_transitions") as batch:
        batch.add_column(sa.Column("action", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("case_transitions") as batch:
        batch.drop_column("action")

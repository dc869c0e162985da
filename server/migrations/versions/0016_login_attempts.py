"""Sign-in attempts in the database: the throttle holds across API processes and restarts.

The throttle counted attempts in each process's memory, so N API processes behind one port let
an address or a user name try N times the limit, and a restart forgot every count.
``login_attempts`` holds one row per counted attempt (a hash of the user name or the address,
and when) for as long as the window lasts.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 05:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_attempts"),
    )
    op.create_index("ix_login_attempts_key_at", "login_attempts", ["key", "at"])
    op.create_index("ix_login_attempts_at", "login_attempts", ["at"])


def downgrade() -> None:
    op.drop_table("login_attempts")

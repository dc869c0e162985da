"""``case_viewers``: which case each open console shows now, so two dispatchers see each other.

Two dispatchers who open the same case both decide it, and the second finds out only from a
conflict after the work is done. Each console page now says which case it shows (a heartbeat);
``case_viewers`` keeps one row per person and page with the case and when it last said so, in the database so
that every API process answers alike.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 19:40:00
"""

import sqlalchemy as sa
from alembic import op


revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_viewers",
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("tab", sa.String(64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_viewers_case_id_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("username", "tab", name=op.f("pk_case_viewers")),
    )
    op.create_index(op.f("ix_case_viewers_case_id"), "case_viewers", ["case_id"])
    op.create_index(op.f("ix_case_viewers_seen_at"), "case_viewers", ["seen_at"])


def downgrade() -> None:
    op.drop_table("case_viewers")

"""Teams: the crews and grids cases are dispatched to, managed by admins.

``teams`` is one team: its ``name`` (trimmed, 1..64 characters, unique: what a dispatch stores
in ``cases.assigned_team``), a ``description``, whether it is ``active`` (an inactive team is
no longer offered or accepted for dispatch but stays on the cases it already holds), and who
made and last changed it, and when.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 05:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_teams"),
        sa.UniqueConstraint("name", name="uq_teams_name"),
    )


def downgrade() -> None:
    op.drop_table("teams")

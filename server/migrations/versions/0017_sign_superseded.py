"""A register entry replaced by a later one: ``signs.superseded_by`` and ``superseded_at``.

A case the register opened about an entry (its permit ran out, the sign changed, its look could
not be checked) that a dispatcher marks permitted registers the sign again; the entry the case
named is then what the register knew before, and the new entry takes its place. Without this the
stale entry stayed in force beside the new one: a renewed permit's sign, matched to the lapsed
entry, opened the same "permit expired" case on the next pass. Superseded entries are kept (the
history of the place, and undone when the case is reopened) but no longer decide sightings.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 05:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signs") as batch:
        batch.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_foreign_key(
            "fk_signs_superseded_by_signs", "signs", ["superseded_by"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("signs") as batch:
        batch.drop_constraint("fk_signs_superseded_by_signs", type_="foreignkey")
        batch.drop_column("superseded_at")
        batch.drop_column("superseded_by")

"""An index on ``sign_sightings.case_id``.

A signboard case's view (``sign_register`` in ``GET /cases/{id}``) and its permitted decision
(the entry it replaces) look up the sightings in one case; without the index each look read the
whole table, which grows by every signboard event.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 06:40:00
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sign_sightings_case_id", "sign_sightings", ["case_id"])


def downgrade() -> None:
    op.drop_index("ix_sign_sightings_case_id", table_name="sign_sightings")

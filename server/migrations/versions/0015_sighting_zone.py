"""A signboard sighting keeps the no-sign zone it was decided in (name and reason).

The zone file is read again when it changes (``server.signs.zone_file``), so a zone can be
renamed, redrawn or removed while a tracked sign is still being seen. Each sighting now stores
what it was decided against: a later event of the same track names the same zone as the case it
opened, whatever the file says by then. Sightings stored before this revision have none, and are
given the zone their place lies in now, as before.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sign_sightings") as batch:
        batch.add_column(sa.Column("zone_name", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("zone_reason", sa.String(length=160), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sign_sightings") as batch:
        batch.drop_column("zone_reason")
        batch.drop_column("zone_name")

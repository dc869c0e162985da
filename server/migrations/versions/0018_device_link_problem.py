"""What a box says over HTTP when the broker refuses it: ``devices.link_problem`` and its time.

A box whose broker login is refused (a rotated password not deployed, a dynamic-security role
removed) cannot publish anything, so the server only saw it fall silent. Such a box now reports
the refusal with its HTTP token (``PUT /api/v1/fleet/devices/{id}/link``); the fleet page shows
why it is silent, until the box is heard over MQTT again.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("link_problem", sa.String(length=500), nullable=True))
        batch.add_column(sa.Column("link_problem_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("link_problem_since")
        batch.drop_column("link_problem")

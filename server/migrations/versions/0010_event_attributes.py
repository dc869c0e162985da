"""``events.attributes``: what a second stage on the box said about the object (schema 2 events).

An ``unsealed_truck`` event from a box with the truck load classifier carries
``{"load": "uncovered", "load_score": 0.91, "load_model": "truck-load 1.0.0"}``; the API and
Open311 show it. Events of schema 1 (older boxes) have none: the column is nullable.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 05:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "attributes")

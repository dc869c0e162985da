"""``events.config_name`` / ``config_version``: the configuration installed over the air that the box
ran when it raised the event (event schema 6).

A model's version alone does not say how the model was run: thresholds, the mirrored view, tiles
and fusion come from the box's configuration, which the fleet rolls out like a model. With the
configuration on each event, a configuration rollout is halted on its cases' precision like a
model's, and precision per model version can be read per configuration.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("config_name", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("config_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("config_version")
        batch.drop_column("config_name")

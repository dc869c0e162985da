"""Orphan evidence: images no event names are counted per device and cleaned up.

* ``evidence.referenced_at``: when the clean-up found an event naming the image (it is kept
  from then on). Images stored before this revision count as referenced: an upgrade never
  deletes old evidence.
* ``ix_evidence_unreferenced`` (partial, only images not yet found referenced): the per-device
  quota and the clean-up read only these few rows.
* ``ix_events_device_received``: the events a device sent recently, which name its images.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_UNREFERENCED = sa.text("referenced_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("referenced_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE evidence SET referenced_at = received_at")
    op.create_index(
        "ix_evidence_unreferenced",
        "evidence",
        ["device_id", "received_at"],
        postgresql_where=_UNREFERENCED,
        sqlite_where=_UNREFERENCED,
    )
    op.create_index("ix_events_device_received", "events", ["device_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_events_device_received", table_name="events")
    op.drop_index("ix_evidence_unreferenced", table_name="evidence")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("referenced_at")

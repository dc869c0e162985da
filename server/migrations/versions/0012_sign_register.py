"""The signboard register: known (permitted) signs with place and appearance, and their sightings.

``signs`` is one known sign: where it is (``lat``/``lon`` and its geohash ``cell``, the same
cells case matching reads), an appearance fingerprint of its crop (``fingerprint``, see
``server.signs.fingerprint``; None for a permit imported without a photo until a patrol first
sees it), the permit (``permit_id``, ``valid_until``), where the entry came from
(``source``: review / import / api), the case it was registered from, the crop's SHA-256, who
and when. ``sign_sightings`` records what the register decided for each signboard event:
attached to a sign (no case), a new or changed sign (a case), or pending while its crop is
not there yet.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 05:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("cell", sa.String(12), nullable=False),
        sa.Column("fingerprint", sa.JSON(), nullable=True),
        sa.Column("crop_sha256", sa.String(64), nullable=True),
        sa.Column("permit_id", sa.String(64), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sighting_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_signs"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_signs_case_id_cases", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_signs_cell", "signs", ["cell"])
    op.create_index("ix_signs_permit_id", "signs", ["permit_id"])
    op.create_table(
        "sign_sightings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("track_id", sa.Uuid(), nullable=False),
        sa.Column("sign_id", sa.Integer(), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=True),
        sa.Column("similarity", sa.Float(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sign_sightings"),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.event_id"], name="fk_sign_sightings_event_id_events", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sign_id"], ["signs.id"], name="fk_sign_sightings_sign_id_signs", ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name="fk_sign_sightings_case_id_cases", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("event_id", name="uq_sign_sightings_event_id"),
    )
    op.create_index("ix_sign_sightings_device_track", "sign_sightings", ["device_id", "track_id"])
    op.create_index("ix_sign_sightings_sign_id", "sign_sightings", ["sign_id"])
    op.create_index("ix_sign_sightings_outcome_at", "sign_sightings", ["outcome", "at"])


def downgrade() -> None:
    op.drop_table("sign_sightings")
    op.drop_table("signs")

"""The fleet: device groups and config versions, command replies, staged rollouts and their targets.

``devices.fleet_group`` names the group a rollout may target (``--group patrol-north``);
``devices.config_name``/``config_version`` is the configuration a box last said it applied.
``command_replies`` keeps every reply a box sent on ``.../commands/reply`` (idempotent on a
hash of the payload: a re-sent reply is stored once). ``rollouts`` is one staged update of a
model or configuration, ``rollout_targets`` one box of it with its wave, command and outcome.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("fleet_group", sa.String(64), nullable=True))
        batch.add_column(sa.Column("config_name", sa.String(128), nullable=True))
        batch.add_column(sa.Column("config_version", sa.String(64), nullable=True))
        batch.create_index("ix_devices_fleet_group", ["fleet_group"])
    op.create_table(
        "command_replies",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("reply_key", sa.String(64), nullable=False),
        sa.Column("command_id", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_replies"),
        sa.UniqueConstraint("reply_key", name="uq_command_replies_reply_key"),
    )
    op.create_index("ix_command_replies_command_id", "command_replies", ["command_id"])
    op.create_index("ix_command_replies_device_at", "command_replies", ["device_id", "received_at"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("signature", sa.String(200), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("selector", sa.String(255), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("waves", sa.JSON(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("reply_timeout_s", sa.Float(), nullable=False),
        sa.Column("precision_margin", sa.Float(), nullable=False),
        sa.Column("halted_reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
    )
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    op.create_table(
        "rollout_targets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("rollout_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.String(64), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("command_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("previous_version", sa.String(64), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_targets"),
        sa.ForeignKeyConstraint(
            ["rollout_id"], ["rollouts.id"], name="fk_rollout_targets_rollout_id_rollouts", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("command_id", name="uq_rollout_targets_command_id"),
    )
    op.create_index("ix_rollout_targets_rollout_wave", "rollout_targets", ["rollout_id", "wave"])
    op.create_index("ix_rollout_targets_device_id", "rollout_targets", ["device_id"])


def downgrade() -> None:
    op.drop_table("rollout_targets")
    op.drop_index("ix_rollouts_state", table_name="rollouts")
    op.drop_table("rollouts")
    op.drop_table("command_replies")
    with op.batch_alter_table("devices") as batch:
        batch.drop_index("ix_devices_fleet_group")
        batch.drop_column("config_version")
        batch.drop_column("config_name")
        batch.drop_column("fleet_group")

"""Review data: what reviewers draw and say on a case beyond its state.

* ``case_reviews``: one row per case, the reviewed event's frame and what was drawn on it
  (corrected box, boxes the detector missed, attributes such as a truck's load).
* ``case_transitions.reason_code`` (the reject reason from a fixed set, or ``duplicate`` for a
  merge) and ``details`` (what an action changed, as JSON), so every review step stays in the
  audited history.
* ``cases.merged_into``: the case a duplicate was merged into.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 04:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("case_transitions") as batch:
        batch.add_column(sa.Column("reason_code", sa.String(length=24), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_cases_merged_into_cases"), "cases", ["merged_into"], ["id"], ondelete="SET NULL"
        )
    op.create_table(
        "case_reviews",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=True),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("added_boxes", sa.JSON(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_reviews_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.event_id"],
            name=op.f("fk_case_reviews_event_id_events"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_reviews")),
    )


def downgrade() -> None:
    op.drop_table("case_reviews")
    with op.batch_alter_table("cases") as batch:
        batch.drop_constraint(op.f("fk_cases_merged_into_cases"), type_="foreignkey")
        batch.drop_column("merged_into")
    with op.batch_alter_table("case_transitions") as batch:
        batch.drop_column("details")
        batch.drop_column("reason_code")

"""Bearer tokens can expire: ``api_tokens.expires_at``.

Tokens from signing in (POST /auth/token) get ``now + api.token_lifetime_h``; tokens an admin
makes (``streetwatch user create|token``, POST /users) expire only when asked to
(``--expires-in-days``). Tokens made before this revision keep NULL, i.e. no expiry: they were
handed out as long-lived credentials (boxes, Prometheus, Open311 clients) and an upgrade must
not lock those out; an admin revokes or replaces them with ``streetwatch user revoke|token``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 05:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")

"""Street vending seen from a patrol waits for a second pass: two case states, no new columns.

A patrol's first sighting of street vending opens a case in ``awaiting_recurrence``, out of
the dispatcher's queue and Open311, until the place is seen again on a separate pass (it then
becomes ``new``); one not seen again within the rule's window becomes ``expired``. States are
stored as short strings (``cases.state``, ``case_transitions.from_state`` / ``to_state``,
VARCHAR(24)), so upgrading changes no table. Downgrading hands an older server only states it
knows: a waiting sighting becomes ``new`` (a dispatcher looks at it) and an expired one
``closed``; the history keeps what happened.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: New state -> the state an older server reads it as.
_OLDER = {"awaiting_recurrence": "new", "expired": "closed"}


def upgrade() -> None:
    pass  # the new values fit the existing VARCHAR(24) state columns


def downgrade() -> None:
    for state, older in _OLDER.items():
        op.execute(
            sa.text("UPDATE cases SET state = :older WHERE state = :state").bindparams(
                older=older, state=state
            )
        )
        for column in ("from_state", "to_state"):
            op.execute(
                sa.text(f"UPDATE case_transitions SET {column} = :older WHERE {column} = :state").bindparams(
                    older=older, state=state
                )
            )

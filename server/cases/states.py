"""The states of a case, apart from the ORM so that the pure matcher can use them without a database."""

from __future__ import annotations

from enum import Enum


class CaseState(str, Enum):
    """Where a case is in the dispatch workflow (see ``server.cases.workflow``).

    Stored as its value (``server.db.types.EnumText``); ``str()`` and f-strings give the value too:

    >>> f"{CaseState.possibly_resolved}", str(CaseState.new), CaseState("closed") is CaseState.closed
    ('possibly_resolved', 'new', True)
    """

    new = "new"
    confirmed = "confirmed"
    rejected = "rejected"
    dispatched = "dispatched"
    possibly_resolved = "possibly_resolved"
    resolved = "resolved"
    closed = "closed"

    def __str__(self) -> str:
        return self.value

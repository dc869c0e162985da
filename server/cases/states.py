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
    #: A patrol's first sighting of a type that needs a second pass (street vending): kept, out of
    #: the queue and Open311, until the place is seen again on a separate pass (then ``new``).
    awaiting_recurrence = "awaiting_recurrence"
    #: A sighting not seen again within its rule's window (``second_pass_expiry_s``).
    expired = "expired"

    def __str__(self) -> str:
        return self.value


#: Sightings that are not cases for a dispatcher yet (or any more): the queue, its counts, the
#: live stream, Open311 and the statistics leave them out unless a filter names them.
HELD_STATES = frozenset({CaseState.awaiting_recurrence, CaseState.expired})

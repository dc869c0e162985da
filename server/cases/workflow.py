"""The case workflow: which state may follow which, and the errors for moves that may not.

    new ──> confirmed ──> dispatched ──> resolved ──> closed
     │          │              │            │
     └──> rejected <───────────┘            └──> confirmed  (not fixed after all)

Any open case (new, confirmed, dispatched) can become ``possibly_resolved``
when a patrol passes without seeing it; a dispatcher then resolves it, or it
goes back to where it was (also automatically, when it is seen again).
A rejected case can be restored to ``new`` or closed. Closed is final: a new
sighting after that opens a new case linked as a recurrence.

A patrol's first sighting of street vending starts in ``awaiting_recurrence`` (held
out of the queue, ``server.cases.second_pass``): a second pass makes it ``new``, a
supervisor may confirm or reject it at once, and one not seen again in time is
``expired`` (a supervisor may still confirm or reject it).
"""

from __future__ import annotations

from server.db.models import CaseState
from streetwatch.errors import StreetWatchError

S = CaseState

ALLOWED: dict[CaseState, frozenset[CaseState]] = {
    S.new: frozenset({S.confirmed, S.rejected, S.dispatched, S.possibly_resolved, S.resolved}),
    S.confirmed: frozenset({S.dispatched, S.rejected, S.resolved, S.possibly_resolved}),
    S.dispatched: frozenset({S.dispatched, S.confirmed, S.rejected, S.resolved, S.possibly_resolved}),
    S.possibly_resolved: frozenset({S.new, S.confirmed, S.dispatched, S.resolved, S.closed}),
    S.resolved: frozenset({S.closed, S.confirmed}),
    S.rejected: frozenset({S.new, S.closed}),
    S.closed: frozenset(),
    S.awaiting_recurrence: frozenset({S.new, S.confirmed, S.rejected, S.expired}),
    S.expired: frozenset({S.confirmed, S.rejected}),
}

#: States a dispatcher still has work on.
OPEN_STATES = frozenset({S.new, S.confirmed, S.dispatched, S.possibly_resolved})


class CaseError(StreetWatchError):
    """A case operation cannot be done."""


class CaseNotFoundError(CaseError):
    """No case has the given id."""


class InvalidTransitionError(CaseError):
    """The workflow does not allow this move from the case's current state (or the case moved on
    since the reviewer saw it); ``state`` is where the case is now, for the 409 answer."""

    def __init__(
        self,
        message: str,
        *,
        case_id: int | None = None,
        state: CaseState | None = None,
        expected: CaseState | None = None,
    ) -> None:
        super().__init__(message)
        self.case_id = case_id
        self.state = state
        self.expected = expected


def check_transition(case_id: int, current: CaseState, target: CaseState, team: str | None) -> None:
    """Raise :class:`InvalidTransitionError` unless ``current -> target`` is allowed."""
    allowed = ALLOWED[current]
    if target not in allowed:
        options = ", ".join(sorted(map(str, allowed))) or "none (closed is final)"
        raise InvalidTransitionError(
            f"case {case_id} is {current}; it cannot become {target} (allowed: {options})",
            case_id=case_id,
            state=current,
        )
    if target is S.dispatched and not team:
        raise InvalidTransitionError(
            f"dispatching case {case_id} needs a team (or grid) to assign it to",
            case_id=case_id,
            state=current,
        )

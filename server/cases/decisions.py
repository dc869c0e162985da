"""Which review decision stands on a case, read from its history.

Only what happened since the case last went (back) to ``new`` counts: a reopened rejection is
under review again. The decision is the latest human confirm or reject; its label is the newest
class a reviewer named for the object since then (with that decision, or by a ``relabel``); its
reason code is the one the rejection gave. Notes, drawn boxes and the receiving side of a merge
change nothing here.

A person who dispatches or resolves a case nobody confirmed has confirmed it by acting: a team
is not sent to, nor a case closed as dealt with for, a violation that is not there. Such a step
stands as a confirmation until a confirm or reject replaces it (precision per model, training
labels); without it, a dispatcher who sends teams straight from the queue would leave every
case they handled out of the model's live precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.cases.review import is_annotation
from server.db.models import CaseState, CaseTransition

_DECISIONS = (CaseState.confirmed, CaseState.rejected)


#: Steps that confirm a case nobody confirmed or rejected: what a person does with a real violation.
CONFIRMING_ACTIONS = ("dispatch", "resolve")


@dataclass(frozen=True)
class Standing:
    decision: CaseTransition | None  # None: no decision stands (a label may still have been named)
    label: str | None
    reason_code: str | None

    @property
    def confirmed(self) -> bool:
        """True when the standing decision confirms the case (a confirm, or a dispatch or resolve
        that stood in for one); False for a rejection or no decision."""
        return self.decision is not None and self.decision.to_state is not CaseState.rejected


def is_decision(step: CaseTransition) -> bool:
    """A reviewer's confirm or reject. A reopen that lands on ``confirmed`` (a resolution that
    did not hold) decides nothing; rows from before actions were recorded go by their state."""
    if step.action is not None:
        return step.action in ("confirm", "reject")
    return step.to_state in _DECISIONS and not step.actor.startswith("system:")


def confirms_by_acting(step: CaseTransition) -> bool:
    """A person's dispatch or resolve: a confirmation when no decision stands yet."""
    return step.action in CONFIRMING_ACTIONS and not step.actor.startswith("system:")


def standing(transitions: Sequence[CaseTransition]) -> Standing:
    decision: CaseTransition | None = None
    labels: dict[CaseState, str] = {}  # decision state -> newest label given with it
    relabel: str | None = None  # a relabel newer than any labelled decision
    for step in transitions:
        if is_annotation(step):
            if step.action == "relabel":
                relabel = step.label
            continue
        if step.to_state is CaseState.new and step.from_state is not None:
            decision, labels, relabel = None, {}, None
        elif is_decision(step):
            decision = step
            if step.label is not None:
                labels[step.to_state] = step.label
                relabel = None
        elif decision is None and confirms_by_acting(step):
            decision = step
    label = relabel
    if label is None and decision is not None:
        label = labels.get(decision.to_state)
    reason_code = (
        decision.reason_code if decision is not None and decision.to_state is CaseState.rejected else None
    )
    return Standing(decision, label, reason_code)

"""Live precision per model or configuration version, from dispatchers' reviews (the
``/stats/precision`` query).

A detector's cases are counted by the model of the event that opened them. The truck load
classifier raises no case by itself: it decides which truck cases are raised, so its versions
are judged on the cases whose opening event it answered (``attributes.load_model``). A box
configuration's versions are judged on the cases whose opening event a box raised while running
it (``events.config_name``/``config_version``, event schema 6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from server.api import stats
from server.api.schemas.stats import PrecisionAnswer
from server.auth import Principal, Role
from server.db.models import Event

#: The stats route only needs a caller to exist; the fleet reads it as the server itself.
_SERVER = Principal(user_id=0, username="fleet", role=Role.admin, token_id=0)


@dataclass(frozen=True)
class VersionPrecision:
    """Reviewed cases a model version raised, and the share it was right on (duplicates, bad images
    out): confirmed, or rejected as permitted, since a permitted sign is still a sign. Judged by the
    share confirmed, a model rolled out down a street of registered shop signs would look worse for
    the permits, not for anything it did."""

    counted: int
    right: int

    @property
    def share(self) -> float | None:
        return self.right / self.counted if self.counted else None


def precision_by_version(session: Session, name: str, since: datetime | None) -> dict[str, VersionPrecision]:
    """Per version of model ``name``: cases decided since ``since``, over every violation type (a
    load classifier's when no case names ``name`` as its detector)."""
    answer = stats.precision(session, _SERVER, since=since, until=None, format="json")
    if not isinstance(answer, PrecisionAnswer):  # json was asked for
        raise TypeError(f"the precision query answered {type(answer).__name__}")
    counted: dict[str, list[int]] = {}
    for row in answer.rows:
        if row.model_name != name:
            continue
        sums = counted.setdefault(row.model_version, [0, 0])
        sums[0] += row.reviewed - row.excluded
        sums[1] += row.confirmed + row.permitted
    if not counted:
        return load_precision_by_version(session, name, since)
    return {version: VersionPrecision(c, k) for version, (c, k) in counted.items()}


def load_precision_by_version(
    session: Session, name: str, since: datetime | None
) -> dict[str, VersionPrecision]:
    """Per version of the load classifier ``name``: cases decided since ``since`` whose opening event
    it classified."""
    decided = stats.decided_cases(session, since, None)
    answered = _opening_load_models(session, list(decided))
    prefix = f"{name} "
    versions = {
        case_id: label.removeprefix(prefix) for case_id, label in answered.items() if label.startswith(prefix)
    }
    return _tally(decided, versions)


def config_precision_by_version(
    session: Session, name: str, since: datetime | None
) -> dict[str, VersionPrecision]:
    """Per version of the box configuration ``name``: cases decided since ``since`` whose opening
    event was raised under it."""
    decided = stats.decided_cases(session, since, None)
    opened_under = stats.opening_values(session, list(decided), Event.config_name, Event.config_version)
    versions = {
        case_id: version
        for case_id, (config_name, version) in opened_under.items()
        if config_name == name and version is not None
    }
    return _tally(decided, versions)


def _tally(
    decided: dict[int, tuple[Any, bool, str | None]], versions: dict[int, str]
) -> dict[str, VersionPrecision]:
    """Decided cases counted per the version that raised each (``versions``: case id -> version;
    cases without one, and duplicates and bad images, are left out)."""
    counted: dict[str, list[int]] = {}
    for case_id, (_case, confirmed, reason) in decided.items():
        version = versions.get(case_id)
        if version is None or reason in stats.EXCLUDED:
            continue
        sums = counted.setdefault(version, [0, 0])
        sums[0] += 1
        sums[1] += confirmed or reason == stats.PERMITTED
    return {version: VersionPrecision(c, k) for version, (c, k) in counted.items()}


#: Precision per version of one model or configuration: (session, name, since) -> by version.
ByVersion = Callable[[Session, str, datetime | None], dict[str, VersionPrecision]]


def _opening_load_models(session: Session, case_ids: list[int]) -> dict[int, str]:
    """``attributes.load_model`` of each case's earliest event, where it has one."""
    found: dict[int, str] = {}
    for case_id, (attributes,) in stats.opening_values(session, case_ids, Event.attributes).items():
        label = attributes.get("load_model") if isinstance(attributes, dict) else None
        if isinstance(label, str) and label:
            found[case_id] = label
    return found


def precision_drop(
    session: Session,
    name: str,
    new: str,
    old: str | None,
    since: datetime,
    margin: float,
    min_reviews: int,
    by_version: ByVersion = precision_by_version,
) -> str | None:
    """Why the rollout of ``new`` must halt on precision, or None.

    Both versions are judged on cases decided since the rollout began (the old one on all its
    reviews when that window holds too few); nothing is concluded below ``min_reviews``.
    ``by_version`` counts a model's versions (the default) or a configuration's
    (:func:`config_precision_by_version`).
    """
    if old is None or old == new:
        return None
    window = by_version(session, name, since)
    fresh = window.get(new)
    if fresh is None or fresh.counted < min_reviews or fresh.share is None:
        return None
    before = window.get(old)
    if before is None or before.counted < min_reviews:
        before = by_version(session, name, None).get(old)
    if before is None or before.counted < min_reviews or before.share is None:
        return None
    if fresh.share < before.share - margin:
        return (
            f"live precision of {name} {new} is {fresh.share:.2f} over {fresh.counted} reviewed cases, "
            f"below {old}'s {before.share:.2f} ({before.counted} cases) by more than {margin:.2f}"
        )
    return None

"""Live precision per model version, from dispatchers' reviews (the ``/stats/precision`` query)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from server.api import stats
from server.api.schemas.stats import PrecisionAnswer
from server.auth import Principal, Role

#: The stats route only needs a caller to exist; the fleet reads it as the server itself.
_SERVER = Principal(user_id=0, username="fleet", role=Role.admin, token_id=0)


@dataclass(frozen=True)
class VersionPrecision:
    """Reviewed cases a model version raised, and the share confirmed (duplicates, bad images out)."""

    counted: int
    confirmed: int

    @property
    def share(self) -> float | None:
        return self.confirmed / self.counted if self.counted else None


def precision_by_version(session: Session, name: str, since: datetime | None) -> dict[str, VersionPrecision]:
    """Per version of model ``name``: cases decided since ``since``, over every violation type."""
    answer = stats.precision(session, _SERVER, since=since, until=None, format="json")
    if not isinstance(answer, PrecisionAnswer):  # json was asked for
        raise TypeError(f"the precision query answered {type(answer).__name__}")
    counted: dict[str, list[int]] = {}
    for row in answer.rows:
        if row.model_name != name:
            continue
        sums = counted.setdefault(row.model_version, [0, 0])
        sums[0] += row.reviewed - row.excluded
        sums[1] += row.confirmed
    return {version: VersionPrecision(c, k) for version, (c, k) in counted.items()}


def precision_drop(
    session: Session,
    name: str,
    new: str,
    old: str | None,
    since: datetime,
    margin: float,
    min_reviews: int,
) -> str | None:
    """Why the rollout of ``new`` must halt on precision, or None.

    Both versions are judged on cases decided since the rollout began (the old one on all its
    reviews when that window holds too few); nothing is concluded below ``min_reviews``.
    """
    if old is None or old == new:
        return None
    window = precision_by_version(session, name, since)
    fresh = window.get(new)
    if fresh is None or fresh.counted < min_reviews or fresh.share is None:
        return None
    before = window.get(old)
    if before is None or before.counted < min_reviews:
        before = precision_by_version(session, name, None).get(old)
    if before is None or before.counted < min_reviews or before.share is None:
        return None
    if fresh.share < before.share - margin:
        return (
            f"live precision of {name} {new} is {fresh.share:.2f} over {fresh.counted} reviewed cases, "
            f"below {old}'s {before.share:.2f} ({before.counted} cases) by more than {margin:.2f}"
        )
    return None

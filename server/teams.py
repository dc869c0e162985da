"""Teams: the crews and grids cases are dispatched to, kept by admins (``/teams``, ``streetwatch team``).

A team's name is what a dispatch writes into ``cases.assigned_team``, so it follows the rule the
dispatch action has always applied to a team: surrounding blanks trimmed, 1..64 characters.
Names are unique ignoring case ("North" and "north" would be one crew to a dispatcher).

The register is opt-in: while no team is defined at all, dispatch takes any team name (as it did
before teams existed, so existing deployments keep working). Once one team is defined, dispatch
takes only the name of an active team. Deactivating a team keeps it on the cases it holds and in
their history; it is just no longer offered or accepted. Renaming does not rewrite cases either:
a case keeps the name it was dispatched under (its transitions record that name too).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db.models import Team
from streetwatch.errors import StreetWatchError

log = logging.getLogger(__name__)

#: The length ``cases.assigned_team`` holds, the dispatch action's own limit.
TEAM_NAME_MAX = 64


class TeamError(StreetWatchError, ValueError):
    """A team name or change the register cannot take (blank, too long, taken, unknown)."""


class TeamExistsError(TeamError):
    """Another team has that name already (ignoring case)."""


class TeamNotFoundError(TeamError):
    """No team with that name or id."""


def clean_name(raw: str) -> str:
    """``raw`` trimmed; a :class:`TeamError` when it is blank or longer than the column holds."""
    name = raw.strip()
    if not name:
        raise TeamError("a team name cannot be blank")
    if len(name) > TEAM_NAME_MAX:
        raise TeamError(
            f"a team name has at most {TEAM_NAME_MAX} characters; {name[:20]!r}... has {len(name)}"
        )
    return name


def _taken(session: Session, name: str, other_than: int | None = None) -> Team | None:
    query = select(Team).where(func.lower(Team.name) == name.lower())
    if other_than is not None:
        query = query.where(Team.id != other_than)
    return session.scalar(query)


def create_team(session: Session, name: str, description: str, actor: str, now: datetime) -> Team:
    """Add an active team (not committed)."""
    name = clean_name(name)
    clash = _taken(session, name)
    if clash is not None:
        raise TeamExistsError(f"a team named {clash.name!r} exists already")
    team = Team(
        name=name,
        description=description.strip(),
        active=True,
        created_by=actor,
        created_at=now,
        updated_by=actor,
        updated_at=now,
    )
    session.add(team)
    _flush(session, name)
    log.info("team %r (id %d) created by %s", name, team.id, actor)
    return team


def _flush(session: Session, name: str) -> None:
    """Write now, so two admins adding the same name at once get a clear error, not a server error."""
    try:
        session.flush()
    except IntegrityError:
        raise TeamExistsError(f"a team named {name!r} exists already") from None


def find_team(session: Session, key: str | int) -> Team:
    """The team with that id, or that name (exact, then ignoring case); else :class:`TeamNotFoundError`."""
    if isinstance(key, int):
        team = session.get(Team, key)
    else:
        team = session.scalar(select(Team).where(Team.name == key.strip())) or _taken(session, key.strip())
    if team is None:
        raise TeamNotFoundError(f"no team {key!r}; known teams: {_known(session, active_only=False)}")
    return team


def update_team(
    session: Session,
    team: Team,
    actor: str,
    now: datetime,
    *,
    name: str | None = None,
    description: str | None = None,
    active: bool | None = None,
) -> Team:
    """Rename, redescribe, deactivate or reactivate ``team`` (not committed); None leaves a field."""
    changes: list[str] = []
    if name is not None:
        name = clean_name(name)
        clash = _taken(session, name, other_than=team.id)
        if clash is not None:
            raise TeamExistsError(f"a team named {clash.name!r} exists already")
        if name != team.name:
            changes.append(f"renamed {team.name!r} -> {name!r}")
            team.name = name
    if description is not None and description.strip() != team.description:
        team.description = description.strip()
        changes.append("description changed")
    if active is not None and active != team.active:
        team.active = active
        changes.append("activated" if active else "deactivated")
    if changes:
        team.updated_by = actor
        team.updated_at = now
        _flush(session, team.name)
        log.info("team id %d %s by %s", team.id, ", ".join(changes), actor)
    return team


def active_team_names(session: Session) -> list[str]:
    return list(session.scalars(select(Team.name).where(Team.active).order_by(func.lower(Team.name))))


def register_in_use(session: Session) -> bool:
    """True once any team is defined: from then on dispatch takes active team names only."""
    return bool(session.scalar(select(exists().where(Team.id.is_not(None)))))


def dispatch_refusal(session: Session, team: str) -> str | None:
    """Why a dispatch to ``team`` is refused, or None when it may go there."""
    if not register_in_use(session):
        return None
    row = session.scalar(select(Team).where(Team.name == team.strip()))
    if row is not None and row.active:
        return None
    why = "is inactive" if row is not None else "is not a known team"
    known = _known(session, active_only=True)
    return f"team {team.strip()!r} {why}; dispatch to one of the active teams: {known}"


def _known(session: Session, active_only: bool) -> str:
    query = select(Team.name).order_by(func.lower(Team.name))
    if active_only:
        query = query.where(Team.active)
    names = list(session.scalars(query))
    return ", ".join(repr(n) for n in names) if names else "(none)"

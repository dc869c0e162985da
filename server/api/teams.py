"""``/teams``: the teams cases are dispatched to; admins keep the list (:mod:`server.teams`).

Everyone with console access may list the active teams (the dispatch picker offers them); only
admins see inactive ones (``?include_inactive=true``), add, rename or deactivate.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import func, select

from server.api.deps import AdminDep, SessionDep, ViewerDep, check_role, utcnow
from server.api.query import MAX_LIMIT
from server.api.schemas.teams import TeamCreate, TeamPage, TeamPublic, TeamUpdate
from server.auth import Role
from server.db.models import Team
from server.teams import (
    TeamError,
    TeamExistsError,
    TeamNotFoundError,
    create_team,
    register_in_use,
    update_team,
)

router = APIRouter(prefix="/teams", tags=["teams"])


def _refused(exc: TeamError) -> HTTPException:
    code = (
        status.HTTP_409_CONFLICT
        if isinstance(exc, TeamExistsError)
        else status.HTTP_422_UNPROCESSABLE_CONTENT
    )
    return HTTPException(code, detail=str(exc))


@router.get("", response_model=TeamPage, summary="List teams (active ones: viewer; all: admin)")
def list_teams(
    session: SessionDep,
    caller: ViewerDep,
    include_inactive: Annotated[bool, Query(description="Also the deactivated teams (admin only).")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = MAX_LIMIT,
    offset: Annotated[int, Query(ge=0, description="Rows to skip.")] = 0,
) -> TeamPage:
    if include_inactive:
        check_role(caller, Role.admin)
    conditions = () if include_inactive else (Team.active.is_(True),)
    total = session.scalar(select(func.count()).select_from(Team).where(*conditions)) or 0
    rows = session.scalars(
        select(Team).where(*conditions).order_by(func.lower(Team.name), Team.id).limit(limit).offset(offset)
    ).all()
    return TeamPage(
        items=[TeamPublic.model_validate(t) for t in rows],
        total=total,
        limit=limit,
        offset=offset,
        free_text_dispatch=not register_in_use(session),
    )


@router.post(
    "",
    response_model=TeamPublic,
    status_code=status.HTTP_201_CREATED,
    summary="Add a team (admin)",
    responses={
        409: {"description": "A team of that name (ignoring case) exists."},
        422: {"description": "A blank or too long name."},
    },
)
def add_team(body: TeamCreate, session: SessionDep, caller: AdminDep) -> TeamPublic:
    try:
        team = create_team(session, body.name, body.description, caller.username, utcnow())
    except TeamError as exc:
        session.rollback()
        raise _refused(exc) from None
    session.commit()
    return TeamPublic.model_validate(team)


@router.patch(
    "/{team_id}",
    response_model=TeamPublic,
    summary="Rename, describe, deactivate or reactivate a team (admin)",
    responses={
        404: {"description": "No such team."},
        409: {"description": "Another team has the new name (ignoring case)."},
        422: {"description": "A blank or too long name."},
    },
)
def change_team(team_id: int, body: TeamUpdate, session: SessionDep, caller: AdminDep) -> TeamPublic:
    team = session.get(Team, team_id)
    if team is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no team with id {team_id}")
    try:
        update_team(
            session,
            team,
            caller.username,
            utcnow(),
            name=body.name,
            description=body.description,
            active=body.active,
        )
    except (TeamError, TeamNotFoundError) as exc:
        session.rollback()
        raise _refused(exc) from None
    session.commit()
    return TeamPublic.model_validate(team)

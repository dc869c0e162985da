"""``streetwatch team add|list|rename|disable|enable``: the teams cases are dispatched to.

The same register as ``/api/v1/teams`` (:mod:`server.teams`): once one team is defined,
dispatch takes only the name of an active team. ``disable`` keeps the team on the cases it
holds; it is just no longer offered or accepted. Changes are recorded as made by ``cli:<login>``.
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from datetime import datetime, timezone

from server.user_cli import command_session


def register_team(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    usage: Callable[[argparse.ArgumentParser], int],
    config_help: str,
) -> None:
    team = subparsers.add_parser("team", help="Manage the teams cases are dispatched to.")
    team.set_defaults(handler=lambda _args: usage(team))
    commands = team.add_subparsers(dest="team_command", metavar="SUBCOMMAND")

    add = commands.add_parser("add", help="Add a team; from then on dispatch takes active team names only.")
    add.add_argument("name", help="The team's name (trimmed, 1..64 characters, unique ignoring case).")
    add.add_argument("--description", default="", help="What the team covers.")
    add.set_defaults(handler=_add)

    listing = commands.add_parser("list", help="List the teams: name, active or disabled, description.")
    listing.add_argument("--active", action="store_true", help="Only the active teams.")
    listing.set_defaults(handler=_list)

    rename = commands.add_parser("rename", help="Rename a team (cases keep the name they had).")
    rename.add_argument("name", help="The team's name now.")
    rename.add_argument("new_name", help="Its new name.")
    rename.set_defaults(handler=_rename)

    disable = commands.add_parser("disable", help="Stop offering and accepting a team for dispatch.")
    disable.add_argument("name", help="The team's name.")
    disable.set_defaults(handler=lambda args: _set_active(args, False))

    enable = commands.add_parser("enable", help="Offer a disabled team for dispatch again.")
    enable.add_argument("name", help="The team's name.")
    enable.set_defaults(handler=lambda args: _set_active(args, True))

    for command in (add, listing, rename, disable, enable):
        command.add_argument("--config", help=config_help)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


def _add(args: argparse.Namespace) -> int:
    from server.teams import TeamError, create_team
    from streetwatch.errors import ConfigError

    with command_session(args) as session:
        try:
            team = create_team(session, args.name, args.description, _actor(), datetime.now(timezone.utc))
        except TeamError as exc:
            raise ConfigError(str(exc)) from None
        name = team.name
    print(f"added team {name!r}; dispatch now takes active team names only")
    return 0


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from server.db.models import Team

    with command_session(args) as session:
        query = select(Team).order_by(func.lower(Team.name))
        if args.active:
            query = query.where(Team.active)
        teams = session.scalars(query).all()
        lines = [f"{t.name}\t{'active' if t.active else 'disabled'}\t{t.description}".rstrip() for t in teams]
    if not lines:
        print("no teams defined: dispatch takes any team name", flush=True)
    for line in lines:
        print(line)
    return 0


def _rename(args: argparse.Namespace) -> int:
    from server.teams import TeamError, find_team, update_team
    from streetwatch.errors import ConfigError

    with command_session(args) as session:
        try:
            team = find_team(session, args.name)
            old = team.name
            update_team(session, team, _actor(), datetime.now(timezone.utc), name=args.new_name)
        except TeamError as exc:
            raise ConfigError(str(exc)) from None
        new = team.name
    print(f"team {old!r} is now {new!r}")
    return 0


def _set_active(args: argparse.Namespace, active: bool) -> int:
    from server.teams import TeamError, find_team, update_team
    from streetwatch.errors import ConfigError

    with command_session(args) as session:
        try:
            team = find_team(session, args.name)
        except TeamError as exc:
            raise ConfigError(str(exc)) from None
        update_team(session, team, _actor(), datetime.now(timezone.utc), active=active)
        name = team.name
    state = (
        "active: offered for dispatch" if active else "disabled: no longer offered or accepted for dispatch"
    )
    print(f"team {name!r} is {state}")
    return 0

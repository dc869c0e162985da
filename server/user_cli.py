"""``streetwatch user create|token|revoke|disable|enable``: API users and their bearer tokens.

A lost laptop or a leaver is handled here: ``revoke`` ends one user's tokens (all, or those
with a given name), ``disable`` shuts a user out whatever tokens they hold, ``enable`` lets
them back in. The API refuses revoked tokens and disabled users on their next request.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from server.db.models import User


def register_user(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    usage: Callable[[argparse.ArgumentParser], int],
    config_help: str,
) -> None:
    user = subparsers.add_parser("user", help="Manage API users and their tokens.")
    user.set_defaults(handler=lambda _args: usage(user))
    commands = user.add_subparsers(dest="user_command", metavar="SUBCOMMAND")

    create = commands.add_parser(
        "create", help="Create a user and print its first API token (shown once) on stdout."
    )
    create.add_argument("username", help="Login name.")
    create.add_argument(
        "--role",
        required=True,
        choices=["viewer", "reviewer", "admin", "device"],
        help="What the user may do.",
    )
    create.add_argument(
        "--password-stdin",
        action="store_true",
        help="Also set a password, read from the first line of stdin.",
    )
    create.set_defaults(handler=_create)

    token = commands.add_parser(
        "token", help="Issue another API token for an existing user (e.g. when one was lost); prints it."
    )
    token.add_argument("username", help="Login name.")
    token.add_argument("--name", help="A note stored with the token (e.g. where it is used).")
    token.set_defaults(handler=_token)

    for command in (create, token):
        command.add_argument(
            "--expires-in-days",
            type=_positive_days,
            help="The token stops working after this many days (default: never; revoke it to end it). "
            "Tokens from signing in (POST /auth/token) always expire after api.token_lifetime_h.",
        )

    revoke = commands.add_parser("revoke", help="Revoke a user's tokens: all of them, or those with --name.")
    revoke.add_argument("username", help="Login name.")
    revoke.add_argument("--name", help="Only tokens issued with this note (see 'user token --name').")
    revoke.set_defaults(handler=_revoke)

    disable = commands.add_parser("disable", help="Refuse every request of a user, whatever token it holds.")
    disable.add_argument("username", help="Login name.")
    disable.set_defaults(handler=lambda args: _set_disabled(args, True))

    enable = commands.add_parser("enable", help="Let a disabled user in again (revoked tokens stay revoked).")
    enable.add_argument("username", help="Login name.")
    enable.set_defaults(handler=lambda args: _set_disabled(args, False))

    password = commands.add_parser(
        "password",
        help="Set a user's password, read from the first line of stdin; their sign-ins with the old one end.",
    )
    password.add_argument("username", help="Login name.")
    password.set_defaults(handler=_password)

    listing = commands.add_parser(
        "list", help="List the users: name, role, active or disabled, live tokens, when last active."
    )
    listing.set_defaults(handler=_list)

    for command in (create, token, revoke, disable, enable, password, listing):
        command.add_argument("--config", help=config_help)


def _positive_days(text: str) -> float:
    try:
        days = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days") from None
    if not 0 < days <= 36500:
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of days above 0 and at most 36500")
    return days


def _expiry(args: argparse.Namespace, now: datetime) -> datetime | None:
    days: float | None = args.expires_in_days
    return now + timedelta(days=days) if days is not None else None


def _shown(expires_at: datetime | None) -> str:
    return f"expires {expires_at.isoformat(timespec='seconds')}" if expires_at else "does not expire"


@contextmanager
def command_session(args: argparse.Namespace) -> Iterator[Session]:
    """The session of one user, team or fleet command: its --config's database, migrated, committed."""
    from server.cli import migrated_session, settings_from_args

    with migrated_session(settings_from_args(args).database_url) as session:
        yield session


def _user(session: Session, username: str) -> User:
    from sqlalchemy import select

    from server.db.models import User
    from streetwatch.errors import ConfigError

    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise ConfigError(f"no user named {username!r}; make one with: streetwatch user create")
    return user


def _create(args: argparse.Namespace) -> int:
    from server.auth import MIN_PASSWORD_CHARS, InvalidUsernameError, UserExistsError, create_user, parse_role
    from streetwatch.errors import ConfigError

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < MIN_PASSWORD_CHARS:
            raise ConfigError(
                f"the password read from stdin must have at least {MIN_PASSWORD_CHARS} characters"
            )
    now = datetime.now(timezone.utc)
    with command_session(args) as session:
        try:
            issued = create_user(
                session,
                args.username,
                parse_role(args.role),
                now,
                password=password,
                token_expires_at=_expiry(args, now),
            )
        except (UserExistsError, InvalidUsernameError) as exc:
            raise ConfigError(str(exc)) from None
    print(
        f"created user {issued.username!r} with role {issued.role.value}; its token "
        f"({_shown(issued.expires_at)}, shown once):",
        file=sys.stderr,
    )
    print(issued.token)
    return 0


def _token(args: argparse.Namespace) -> int:
    from server.auth import issue_token

    now = datetime.now(timezone.utc)
    with command_session(args) as session:
        issued = issue_token(
            session, _user(session, args.username), now, name=args.name, expires_at=_expiry(args, now)
        )
    print(
        f"new token for {issued.username!r} ({issued.role.value}, {_shown(issued.expires_at)}), shown once:",
        file=sys.stderr,
    )
    print(issued.token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from streetwatch.errors import ConfigError

    with command_session(args) as session:
        user = _user(session, args.username)
        live = [t for t in user.tokens if not t.revoked and (args.name is None or t.name == args.name)]
        if not live:
            which = f" named {args.name!r}" if args.name is not None else ""
            raise ConfigError(f"{args.username!r} has no live token{which}; nothing revoked")
        for token in live:
            token.revoked = True
    print(f"revoked {len(live)} token(s) of {args.username!r}; they are refused from the next request on")
    return 0


def _list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from server.db.models import User

    with command_session(args) as session:
        lines = []
        for user in session.scalars(select(User).order_by(User.username)):
            live = [t for t in user.tokens if not t.revoked]
            used = [t.last_used_at for t in user.tokens if t.last_used_at is not None]
            last = max(used).isoformat(timespec="seconds") if used else "never"
            state = "disabled" if user.disabled else "active"
            lines.append(
                f"{user.username}\t{user.role}\t{state}\t{len(live)} live token(s)\tlast active {last}"
            )
    for line in lines:
        print(line)
    return 0


def _password(args: argparse.Namespace) -> int:
    from server.auth import PasswordError, set_password
    from streetwatch.errors import ConfigError

    password = sys.stdin.readline().rstrip("\n")
    with command_session(args) as session:
        try:
            revoked = set_password(session, _user(session, args.username), password)
        except PasswordError as exc:
            raise ConfigError(f"{args.username!r}: {exc}") from None
    print(f"{args.username!r} has a new password; {revoked} sign-in token(s) made with the old one revoked")
    return 0


def _set_disabled(args: argparse.Namespace, disabled: bool) -> int:
    with command_session(args) as session:
        _user(session, args.username).disabled = disabled
    print(f"{args.username!r} is {'disabled: every request is refused' if disabled else 'enabled again'}")
    return 0

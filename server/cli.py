"""``streetwatch server run|ingest|migrate`` and ``streetwatch user create``.

Heavy imports (FastAPI, SQLAlchemy, uvicorn, paho) happen inside the handlers,
so ``streetwatch --help`` works on an edge box without the server extra.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import Any

CONFIG_HELP = "Server settings YAML (default: built-in defaults; STREETWATCH_* variables override)."


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = subparsers.add_parser(
        "server", help="Run the central server: HTTP API, MQTT ingest, migrations."
    )
    server.set_defaults(handler=lambda _args: _usage(server))
    commands = server.add_subparsers(dest="server_command", metavar="SUBCOMMAND")

    run = commands.add_parser("run", help="Serve the REST API, Open311 and /metrics over HTTP (uvicorn).")
    run.add_argument("--config", help=CONFIG_HELP)
    run.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1).")
    run.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000).")
    run.set_defaults(handler=_run)

    ingest = commands.add_parser("ingest", help="Read events from MQTT into the database and cases.")
    ingest.add_argument("--config", help=CONFIG_HELP)
    ingest.add_argument(
        "--client-id",
        help="MQTT client id of this worker (default: mqtt.client_id from the settings). Give each "
        "worker its own, the same across restarts: e.g. streetwatch-ingest-1, -2.",
    )
    ingest.set_defaults(handler=_ingest)

    migrate = commands.add_parser("migrate", help="Create or update the database schema (Alembic).")
    migrate.add_argument("--config", help=CONFIG_HELP)
    migrate.add_argument(
        "--revision",
        default="head",
        help="head (default) or a revision id to upgrade to; -N or 'base' to downgrade.",
    )
    migrate.add_argument(
        "--drop-data",
        action="store_true",
        help="confirm a downgrade: it drops the columns and tables of the revisions it undoes, with "
        "their data ('base' drops everything)",
    )
    migrate.set_defaults(handler=_migrate)

    user = subparsers.add_parser("user", help="Manage API users.")
    user.set_defaults(handler=lambda _args: _usage(user))
    user_commands = user.add_subparsers(dest="user_command", metavar="SUBCOMMAND")
    create = user_commands.add_parser(
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
    create.add_argument("--config", help=CONFIG_HELP)
    create.set_defaults(handler=_user_create)

    token = user_commands.add_parser(
        "token", help="Issue another API token for an existing user (e.g. when one was lost); prints it."
    )
    token.add_argument("username", help="Login name.")
    token.add_argument("--name", help="A note stored with the token (e.g. where it is used).")
    token.add_argument("--config", help=CONFIG_HELP)
    token.set_defaults(handler=_user_token)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _settings(args: argparse.Namespace) -> Any:
    from server.settings import load_settings

    return load_settings(args.config)


def ensure_migrated(database_url: str) -> None:
    """Raise ConfigError unless the database is at the newest migration."""
    from server.db.migrate import current_revision, head_revision
    from streetwatch.errors import ConfigError

    current, head = current_revision(database_url), head_revision()
    if current != head:
        raise ConfigError(
            f"the database is at migration {current or 'none (empty)'}, this build needs {head}; "
            "run: streetwatch server migrate"
        )


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = _settings(args)
    ensure_migrated(settings.database_url)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from server.ingest import IngestWorker

    settings = _settings(args)
    ensure_migrated(settings.database_url)
    worker = IngestWorker(settings, client_id=args.client_id)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from alembic.util.exc import CommandError

    from server.db.migrate import current_revision, downgrade, upgrade
    from streetwatch.errors import ConfigError

    settings = _settings(args)
    revision: str = args.revision
    going_down = revision == "base" or revision.startswith("-")
    if going_down and not args.drop_data:
        raise ConfigError(
            f"--revision {revision} is a downgrade: it deletes the data of the tables and columns it "
            "undoes. Back the database up, then repeat with --drop-data"
        )
    try:
        if going_down:
            downgrade(settings.database_url, revision)
        else:
            upgrade(settings.database_url, revision)
    except CommandError as exc:  # an unknown or unreachable revision
        raise ConfigError(f"--revision {revision}: {exc}") from None
    print(f"database at migration {current_revision(settings.database_url) or 'base (empty)'}")
    return 0


def _user_create(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from server.auth import InvalidUsernameError, UserExistsError, create_user, parse_role
    from server.db.session import make_engine, session_factory
    from streetwatch.errors import ConfigError

    settings = _settings(args)
    ensure_migrated(settings.database_url)
    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if len(password) < 8:
            raise ConfigError("the password read from stdin must have at least 8 characters")
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            try:
                issued = create_user(
                    session,
                    args.username,
                    parse_role(args.role),
                    datetime.now(timezone.utc),
                    password=password,
                )
            except (UserExistsError, InvalidUsernameError) as exc:
                raise ConfigError(str(exc)) from None
            session.commit()
    finally:
        engine.dispose()
    print(
        f"created user {issued.username!r} with role {issued.role.value}; its token (shown once):",
        file=sys.stderr,
    )
    print(issued.token)
    return 0


def _user_token(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from sqlalchemy import select

    from server.auth import issue_token
    from server.db.models import User
    from server.db.session import make_engine, session_factory
    from streetwatch.errors import ConfigError

    settings = _settings(args)
    ensure_migrated(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            user = session.scalar(select(User).where(User.username == args.username))
            if user is None:
                raise ConfigError(f"no user named {args.username!r}; make one with: streetwatch user create")
            issued = issue_token(session, user, datetime.now(timezone.utc), name=args.name)
            session.commit()
    finally:
        engine.dispose()
    print(f"new token for {issued.username!r} ({issued.role.value}), shown once:", file=sys.stderr)
    print(issued.token)
    return 0

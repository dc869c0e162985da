"""``streetwatch server run|ingest|workers|migrate``; ``streetwatch user ...``: :mod:`server.user_cli`.

Heavy imports (FastAPI, SQLAlchemy, uvicorn, paho) happen inside the handlers,
so ``streetwatch --help`` works on an edge box without the server extra.
"""

from __future__ import annotations

import argparse
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

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

    workers = commands.add_parser(
        "workers",
        help="Ingest workers by their last heartbeat; exit status 1 while one is down (its share of "
        "messages queues at the broker).",
    )
    workers.add_argument("--config", help=CONFIG_HELP)
    workers.add_argument(
        "--forget", metavar="CLIENT_ID", help="Remove a retired worker from the list (and from /metrics)."
    )
    workers.set_defaults(handler=_workers)

    check = commands.add_parser(
        "check-config",
        help="Validate the server settings (the file under STREETWATCH_* variables) and print what "
        "would run, passwords masked; exit status 1 and what is wrong otherwise.",
    )
    check.add_argument("--config", help=CONFIG_HELP)
    check.set_defaults(handler=_check_config)

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

    from server.user_cli import register_user

    register_user(subparsers, _usage, CONFIG_HELP)

    from server.team_cli import register_team

    register_team(subparsers, _usage, CONFIG_HELP)

    from server.fleet_cli import register_fleet

    register_fleet(subparsers, _usage, CONFIG_HELP)

    from server.signs_cli import register_signs

    register_signs(subparsers, _usage, CONFIG_HELP)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def settings_from_args(args: argparse.Namespace) -> Any:
    """The server settings a command's ``--config`` names (defaults and STREETWATCH_* otherwise)."""
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


@contextmanager
def migrated_session(database_url: str) -> Iterator[Session]:
    """A session on a fully migrated database, committed when the block succeeds (user commands)."""
    from server.db.session import make_engine, session_factory

    ensure_migrated(database_url)
    engine = make_engine(database_url)
    try:
        with session_factory(engine)() as session:
            yield session
            session.commit()
    finally:
        engine.dispose()


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from server.app import create_app

    settings = settings_from_args(args)
    ensure_migrated(settings.database_url)
    from server.web.live import SHUTDOWN_GRACE_S
    from server.web.serving import HttpServer

    # HttpServer ends open consoles' live streams when stopped, so Ctrl-C does not wait on them.
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_level="info",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
    )
    HttpServer(config).run()
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from server.ingest import IngestWorker

    settings = settings_from_args(args)
    ensure_migrated(settings.database_url)
    worker = IngestWorker(settings, client_id=args.client_id)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        worker.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.run()
    return 0


def _workers(args: argparse.Namespace) -> int:
    from server.db.session import make_engine, session_factory
    from server.ingest.heartbeat import forget, workers
    from streetwatch.errors import ConfigError
    from streetwatch.events import utcnow

    settings = settings_from_args(args)
    ensure_migrated(settings.database_url)
    engine = make_engine(settings.database_url)
    try:
        sessions = session_factory(engine)
        if args.forget:
            with sessions.begin() as session:
                if not forget(session, args.forget):
                    raise ConfigError(f"no ingest worker {args.forget!r} has ever reported")
            print(f"forgot ingest worker {args.forget!r}")
            return 0
        with sessions() as session:
            known = workers(session, utcnow())
    finally:
        engine.dispose()
    if not known:
        print("no ingest worker has reported yet (start one: streetwatch server ingest)")
        return 1
    for state in known:
        print(state.describe())
    return 1 if any(state.down for state in known) else 0


def _check_config(args: argparse.Namespace) -> int:
    import os

    import yaml

    from server.settings import ServerSettings
    from server.settings_sources import variables_in_use

    settings = settings_from_args(args)  # a wrong value raises ConfigError: exit status 1
    print(yaml.safe_dump(settings.for_display(), sort_keys=False), end="")
    variables = variables_in_use(ServerSettings, os.environ)
    source = f"server settings {args.config}" if args.config else "server settings (no file: defaults)"
    print(f"# {source}: ok" + (f"; from the environment: {', '.join(variables)}" if variables else ""))
    return 0


def _migrate(args: argparse.Namespace) -> int:
    from alembic.util.exc import CommandError

    from server.db.migrate import current_revision, downgrade, upgrade
    from streetwatch.errors import ConfigError

    settings = settings_from_args(args)
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

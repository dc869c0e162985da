"""The ``streetwatch`` command: one entry point, subcommands registered per role.

Each role owns a ``cli`` module exposing ``register(subparsers)``; handlers are
set with ``parser.set_defaults(handler=fn)`` and return an exit code. Role
modules import their heavy dependencies inside the handlers, so ``streetwatch
--help`` works on a box that only has the ``edge`` extra installed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from streetwatch import __version__
from streetwatch.errors import StreetWatchError

#: Modules that contribute subcommands, in help order.
COMMAND_MODULES: tuple[str, ...] = (
    "streetwatch.schema_cli",
    "edge.cli",
    "edge.detect_cli",
    "training.cli",
    "training.datasets.cli",
    "server.cli",
    "demo.cli",
)

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streetwatch",
        description="Spot street violations from cameras: edge pipeline, delivery, server, training.",
    )
    parser.add_argument("--version", action="version", version=f"streetwatch {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="-v adds debug messages (info is shown anyway)."
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # A role whose package is absent (e.g. no server code on an edge image) adds nothing.
            if exc.name and module_name.startswith(exc.name):
                continue
            raise
        module.register(subparsers)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity + 1, 2)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return handler(args)
    except StreetWatchError as exc:
        print(f"streetwatch: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        print(
            f"streetwatch: error: this command needs the Python package {exc.name!r}; "
            "install the matching extra, e.g. pip install 'streetwatch[edge]' (or [server], [train], [all])",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

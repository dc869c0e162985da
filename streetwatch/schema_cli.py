"""``streetwatch schema``: write or check the event JSON Schema in ``docs/``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from streetwatch.events import event_json_schema
from streetwatch.paths import docs_dir


def render_schema() -> str:
    return json.dumps(event_json_schema(), indent=2, sort_keys=True) + "\n"


def _handle(args: argparse.Namespace) -> int:
    target = Path(args.output) if args.output else docs_dir() / "event.schema.json"
    text = render_schema()
    if args.check:
        current = target.read_text() if target.exists() else ""
        if current != text:
            print(f"{target} is out of date; run: streetwatch schema")
            return 1
        print(f"{target} is up to date")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    print(f"wrote {target}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("schema", help="Write the event JSON Schema to docs/event.schema.json.")
    parser.add_argument("--output", help="Where to write it (default: docs/event.schema.json).")
    parser.add_argument("--check", action="store_true", help="Only check that the file is up to date.")
    parser.set_defaults(handler=_handle)

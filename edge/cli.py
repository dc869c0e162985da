"""``streetwatch edge``: run the detection pipeline of one camera, or check a device config.

Usage: ``streetwatch edge run --config FILE [--max-frames N]`` and
``streetwatch edge check-config FILE``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.config import DeviceConfig
    from edge.interfaces import EventSink
    from edge.pipeline import EdgePipeline


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = subparsers.add_parser("edge", help="The edge box: run the detection pipeline, check a config.")
    commands = edge.add_subparsers(dest="edge_command", metavar="COMMAND")

    run = commands.add_parser(
        "run", help="Run source -> detectors -> tracker -> rules -> events until the source ends or Ctrl-C."
    )
    run.add_argument("--config", required=True, metavar="FILE", help="Device config (YAML).")
    run.add_argument("--max-frames", type=_positive_int, metavar="N", help="Stop after N frames.")
    run.set_defaults(handler=_run)

    check = commands.add_parser(
        "check-config", help="Validate a device config, check its files and load its models."
    )
    check.add_argument("file", metavar="FILE", help="Device config (YAML).")
    check.add_argument("--no-models", action="store_true", help="Only check that model files exist.")
    check.set_defaults(handler=_check)

    def _help(_args: argparse.Namespace) -> int:
        edge.print_help()
        return 2

    edge.set_defaults(handler=_help)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge.updates.configs import run_box

    # The pipeline, restarted in-process when an update_config arrives (edge.updates.configs).
    pipeline, stats = run_box(Path(args.config), args.max_frames)
    delivery = _delivery(pipeline.sink, pipeline.config)
    print(f"{stats.summary()}{_trucks(pipeline)}; {delivery}", file=sys.stderr)
    return 0


def _trucks(pipeline: EdgePipeline) -> str:
    """What the truck load stage decided: silenced trucks would otherwise leave no trace."""
    if pipeline.load_stage is None:
        return ""
    c = pipeline.load_stage.counts
    far = f", {c.too_small} too far to judge" if pipeline.load_stage.config.min_side_px else ""
    return f"; trucks: {c.raised} raised, {c.unsure} unsure, {c.silenced} silenced by the load stage{far}"


def _delivery(sink: EventSink, config: DeviceConfig) -> str:
    """Where the events went; for MQTT, whether the server acknowledged them all or the outbox keeps some."""
    from edge.config import JsonlSinkConfig
    from edge.interfaces import QueuedSink

    if not isinstance(sink, QueuedSink):
        target = config.sink.path if isinstance(config.sink, JsonlSinkConfig) else config.sink.kind
        return f"events went to {target}"
    left = sink.pending()
    if left.events or left.evidence:
        return (
            f"{left.events} events and {left.evidence} images wait in the outbox "
            f"{left.where} for the server's acknowledgement; they go out again on the next start"
        )
    return "the server acknowledged every event as stored"


def _check(args: argparse.Namespace) -> int:
    from edge.config import load_config
    from edge.config_check import check_device_config, describe
    from streetwatch.errors import ConfigError

    try:
        config = load_config(args.file)
    except ConfigError as exc:
        print(f"NOT OK: {exc}", file=sys.stderr)
        return 1
    report = check_device_config(config, load_models=not args.no_models)
    if not report.ok:
        print(f"NOT OK: {args.file} has {len(report.problems)} problem(s):", file=sys.stderr)
        for problem in report.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"OK: {args.file}")
    for line in describe(config, report):
        print(f"  {line}")
    return 0

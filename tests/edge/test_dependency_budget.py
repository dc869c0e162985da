"""The edge runtime must import without torch, ultralytics or server packages (a Jetson image has none)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

FORBIDDEN = ("torch", "ultralytics", "fastapi", "sqlalchemy", "uvicorn", "PIL", "scipy", "matplotlib")
EDGE_MODULES = (
    "edge.pipeline", "edge.cli", "edge.detect_cli", "edge.mqtt", "edge.outbox", "edge.sinks",
    "edge.sources", "edge.location", "edge.tracker", "edge.rules", "edge.evidence", "edge.updates",
    "edge.sd_notify",
)  # fmt: skip

PROBE = textwrap.dedent(
    """
    import importlib, sys

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"edge code imported {name}")

    sys.meta_path.insert(0, Block())
    for module in EDGE_MODULES:
        importlib.import_module(module)
    import streetwatch.cli
    streetwatch.cli.build_parser()  # every role's command module must import lazily, too
    print("ok")
    """
)


def run_probe(forbidden: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    code = f"FORBIDDEN = {forbidden!r}\nEDGE_MODULES = {EDGE_MODULES!r}\n" + PROBE
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_edge_runtime_imports_within_its_dependency_budget() -> None:
    result = run_probe(FORBIDDEN)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_the_probe_catches_a_forbidden_import() -> None:
    # numpy is what the edge really uses: blocking it must make the probe fail.
    result = run_probe((*FORBIDDEN, "numpy"))
    assert result.returncode != 0 and "edge code imported numpy" in result.stderr

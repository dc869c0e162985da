"""Docstring examples run through pytest's ``--doctest-modules`` over every package.

The packages are test paths (pyproject.toml), so every module is imported during collection:
importing one must do nothing but define things (no files, threads, log handlers or signal
handlers), or collecting the tests would change the machine they run on.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("streetwatch", "edge", "server", "training", "demo", "bench")

PROBE = textwrap.dedent(
    """
    import importlib, logging, os, pkgutil, signal, sys, threading
    from pathlib import Path

    repo = Path(sys.argv[1])
    sys.path.insert(0, str(repo))
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    log_handlers = list(logging.getLogger().handlers)
    for package in sys.argv[2:]:
        for info in pkgutil.walk_packages([str(repo / package)], prefix=package + "."):
            if not info.name.startswith("server.migrations"):
                importlib.import_module(info.name)
    problems = []
    if os.listdir("."):
        problems.append(f"files created in the working directory: {os.listdir('.')}")
    if threading.active_count() != 1:
        problems.append(f"threads started: {[t.name for t in threading.enumerate()]}")
    if logging.getLogger().handlers != log_handlers:
        problems.append("root log handlers changed")
    if {s: signal.getsignal(s) for s in handlers} != handlers:
        problems.append("signal handlers changed")
    print("\\n".join(problems) or "ok")
    """
)


def test_importing_every_module_has_no_side_effects(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO), *PACKAGES],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "ok"


def test_every_module_with_examples_is_collected_for_doctests() -> None:
    options = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    ignored = [a.removeprefix("--ignore=") for a in options["addopts"].split() if a.startswith("--ignore=")]
    with_examples = [
        path.relative_to(REPO)
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if ">>> " in path.read_text(encoding="utf-8")
    ]
    assert with_examples, "no docstring examples found at all"
    for path in with_examples:
        assert path.parts[0] in options["testpaths"], f"{path}'s examples are never run"
        assert not any(str(path).startswith(i) for i in ignored), f"{path}'s examples are ignored"

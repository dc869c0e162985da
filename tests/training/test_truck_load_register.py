"""The truck load classifier in the model registry: the shipped entries match their files, list as a
classifier, and can be signed; the register tool refuses an evaluation of another model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

from streetwatch.cli import main
from streetwatch.file_hash import sha256_file
from streetwatch.paths import repo_root
from streetwatch.releases import find_release, generate_keypair, sign_model
from training.registry import Registry, compare
from training.truck_load.register import main as register
from training.truck_load.register import val_hash

REPO = repo_root()
REGISTRY = REPO / "models" / "registry.json"
SPLIT = REPO / "datasets" / "truck_load" / "split.csv"


def test_the_registered_classifiers_are_the_shipped_files_scored_on_the_current_val_split() -> None:
    registry = Registry(REGISTRY)
    assert registry.current["truck-load"] == "1.1.0"
    eval_hash, crops = val_hash(SPLIT)
    for version, file in (("1.1.0", "truck-load.onnx"), ("1.2.0", "truck-load-1.2.0.onnx")):
        entry = registry.get("truck-load", version)
        assert entry is not None, version
        path = registry.file_of(entry)
        assert path == REPO / "models" / "truck-load" / file and sha256_file(path) == entry.sha256
        meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
        assert (meta["streetwatch_model"], meta["version"], meta["data_hash"]) == (
            "truck-load",
            version,
            entry.data_hash,
        )
        assert entry.metrics["task"] == "classify" and "map50" not in entry.metrics
        assert entry.eval_hash == eval_hash and entry.metrics["crops"] == crops
        report = json.loads((REPO / "models" / "truck-load" / _eval_file(version)).read_text())
        assert entry.metrics["macro_accuracy"] == report["macro_accuracy"]


def _eval_file(version: str) -> str:
    return "eval_edge_1.1.0_val264.json" if version == "1.1.0" else f"eval_edge_{version}.json"


def test_model_list_shows_a_classifier_by_its_macro_accuracy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model", "list", "--registry", str(REGISTRY)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "* truck-load 1.1.0  macro acc 0.568  truck-load/truck-load.onnx  sha256 0ca55a69c100" in lines
    assert any(line.startswith("  truck-load 1.2.0  macro acc 0.650  ") for line in lines), lines


def test_a_detector_gate_refuses_to_compare_with_a_classifier() -> None:
    entry = Registry(REGISTRY).current_entry("truck-load")
    decision = compare({"map50": 0.9, "map50_95": 0.6}, entry.eval_hash if entry else "", entry)
    assert not decision.accepted and "is a classifier" in decision.explain()


def test_a_registered_classifier_is_signed_for_the_fleet(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(REPO / "models" / "truck-load", folder / "truck-load")
    shutil.copyfile(REGISTRY, folder / "registry.json")
    private, _public = generate_keypair(tmp_path / "keys")
    sign_model(folder / "registry.json", "truck-load", "1.2.0", private)
    signed = find_release(folder, "model", "truck-load", "1.2.0")
    assert signed.release.sha256 == sha256_file(folder / "truck-load" / "truck-load-1.2.0.onnx")


def test_register_refuses_an_evaluation_of_another_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "registry.json"
    registry.write_text(json.dumps({"format": 1, "current": {}, "models": []}))
    model = REPO / "models" / "truck-load" / "truck-load-1.2.0.onnx"
    other = REPO / "models" / "truck-load" / "eval_edge_1.1.0_val264.json"
    assert register([str(model), "--eval", str(other), "--registry", str(registry)]) == 2
    assert "evaluated 'truck-load 1.1.0', not truck-load 1.2.0" in capsys.readouterr().err
    assert json.loads(registry.read_text())["models"] == []  # nothing written
    shipped = REPO / "models" / "truck-load" / "truck-load.onnx"
    assert register([str(shipped), "--eval", str(other), "--registry", str(registry), "--current"]) == 0
    good = REPO / "models" / "truck-load" / "eval_edge_1.2.0.json"
    capsys.readouterr()
    assert register([str(model), "--eval", str(good), "--registry", str(registry)]) == 0
    assert "the current 1.1.0 scores 0.568 on the same crops" in capsys.readouterr().out
    _shipped, new = Registry(registry).models
    assert (new.version, new.metrics["macro_accuracy"], new.parent) == ("1.2.0", 0.6496, "1.1.0")
    assert Registry(registry).current == {"truck-load": "1.1.0"}

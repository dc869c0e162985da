"""The load classifier's promotion gate: a candidate becomes the version boxes run only if, on the same
held-out crops, it is not worse class by class; a changed val split re-baselines on the current
model's file; every refusal names the reason and writes nothing."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.case_precision import SHARED
from streetwatch.cli import main
from streetwatch.file_hash import sha256_file
from streetwatch.paths import repo_root
from training.registry import Registry
from training.truck_load.register import main as register
from training.truck_load.split_hash import val_hash

REPO = repo_root()
SHIPPED = REPO / "models" / "truck-load"
SPLIT = REPO / "datasets" / "truck_load" / "split.csv"
CLASSES = ("uncovered", "covered", "empty", "closed", "not_a_truck")


@pytest.fixture
def models(tmp_path: Path) -> Path:
    """A copy of the repository's registry and load models: 1.1.0 current, 1.2.0 registered."""
    folder = tmp_path / "models"
    shutil.copytree(SHIPPED, folder / "truck-load")
    shutil.copyfile(REPO / "models" / "registry.json", folder / "registry.json")
    return folder


def promote(models: Path, model: Path, report: Path, *extra: str) -> int:
    registry = str(models / "registry.json")
    return main(["model", "promote", str(model), "--eval", str(report), "--registry", registry, *extra])


def test_the_shipped_candidate_is_refused_for_the_class_it_loses_and_taken_when_the_trade_is_accepted(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1.2.0 is better on average (0.650 against 0.568) but calls fewer closed bodies closed (0.823
    against 0.876): a closed body it does not silence is a truck case nobody acts on."""
    candidate, report = models / "truck-load" / "truck-load-1.2.0.onnx", SHIPPED / "eval_edge_1.2.0.json"
    before = (models / "registry.json").read_text()
    assert promote(models, candidate, report) == 1
    out = capsys.readouterr().out
    assert "refused" in out and "class 'closed' accuracy 0.8230 dropped more than 0.02 below 0.8761" in out
    assert (models / "registry.json").read_text() == before  # nothing written

    assert promote(models, candidate, report, "--class-tolerance", "0.06") == 0
    assert "truck-load 1.2.0: accepted: macro accuracy 0.6496 vs 0.5675" in capsys.readouterr().out
    registry = Registry(models / "registry.json")
    assert registry.current["truck-load"] == "1.2.0"
    entry = registry.get("truck-load", "1.2.0")
    assert entry is not None
    assert entry.gate == {"class_tolerance": 0.06}  # the trade is on the record
    assert (entry.parent, entry.metrics["macro_accuracy"]) == ("1.1.0", 0.6496)
    registered = Registry(REPO / "models" / "registry.json").get("truck-load", "1.2.0")
    assert registered is not None and (entry.created, entry.notes) == (registered.created, registered.notes)
    assert [m.version for m in registry.models if m.name == "truck-load"] == ["1.1.0", "1.2.0"]


def test_register_current_goes_through_the_same_gate(
    models: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate, report = models / "truck-load" / "truck-load-1.2.0.onnx", SHIPPED / "eval_edge_1.2.0.json"
    args = [str(candidate), "--eval", str(report), "--registry", str(models / "registry.json"), "--current"]
    assert register(args) == 1
    assert "class 'closed'" in capsys.readouterr().out
    assert Registry(models / "registry.json").current["truck-load"] == "1.1.0"
    assert register([*args[:-1]]) == 2  # without --current a registered version is an error
    assert "already registered; export a new version, or make it current with --current" in (
        capsys.readouterr().err
    )
    current = models / "truck-load" / "truck-load.onnx"
    assert register([str(current), "--eval", str(SHIPPED / "eval_edge_1.1.0_val264.json"),
                     "--registry", str(models / "registry.json"), "--current"]) == 2  # fmt: skip
    assert "truck-load 1.1.0 is already the current version" in capsys.readouterr().err


def test_a_report_of_another_file_or_other_crops_is_refused(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    candidate = models / "truck-load" / "truck-load-1.2.0.onnx"
    eval_hash, _ = val_hash(SPLIT)
    wrong_file = write_report(tmp_path / "a.json", "truck-load 1.2.0", "0" * 64, eval_hash, shipped_counts())
    assert promote(models, candidate, wrong_file) == 1
    assert "measured a file with sha256 000000000000, not this one (8b11dd2cce6b)" in capsys.readouterr().err
    other_crops = write_report(
        tmp_path / "b.json", "truck-load 1.2.0", sha256_file(candidate), "f" * 64, shipped_counts()
    )
    assert promote(models, candidate, other_crops) == 1
    assert "scored other crops (eval hash ffffffffffff)" in capsys.readouterr().err
    assert Registry(models / "registry.json").current["truck-load"] == "1.1.0"


def test_a_changed_val_split_needs_the_current_model_re_evaluated_on_it(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Field labels move the split: the stored figures then measure other crops. The gate compares
    against the current model's very file evaluated on the new split, and records that it did."""
    split = moved_split(tmp_path / "split.csv")  # one more open load held out
    new_hash, crops = val_hash(split)
    assert crops == 265 and new_hash != val_hash(SPLIT)[0]
    candidate = models / "truck-load" / "truck-load-1.2.0.onnx"
    current = models / "truck-load" / "truck-load.onnx"
    counts = shipped_counts()
    counts["uncovered"] = (9, 6)  # the candidate gets the new open load right
    report = write_report(tmp_path / "c.json", "truck-load 1.2.0", sha256_file(candidate), new_hash, counts)
    split_args = ("--split", str(split), "--class-tolerance", "0.06")
    assert promote(models, candidate, report, *split_args) == 1
    out = capsys.readouterr().out
    assert "scored on other crops" in out and "(--baseline-eval)" in out

    stale = SHIPPED / "eval_edge_1.1.0_val264.json"  # the current model, but not on the new crops
    assert promote(models, candidate, report, *split_args, "--baseline-eval", str(stale)) == 1
    assert "does not say which file and which crops it measured" in capsys.readouterr().err

    base = dict(uncovered=(9, 4), covered=(65, 48), empty=(13, 1), closed=(113, 99), not_a_truck=(65, 42))
    baseline = write_report(tmp_path / "d.json", "truck-load 1.1.0", sha256_file(current), new_hash, base)
    assert promote(models, candidate, report, *split_args, "--baseline-eval", str(baseline)) == 0
    out = capsys.readouterr().out
    assert "accepted: gate re-baselined on 1.1.0 re-evaluated on " + new_hash[:12] in out
    registry = Registry(models / "registry.json")
    entry = registry.get("truck-load", "1.2.0")
    assert entry is not None and registry.current["truck-load"] == "1.2.0"
    assert entry.eval_hash == new_hash and entry.metrics["crops"] == 265
    assert entry.metrics["per_class_accuracy"]["uncovered"] == pytest.approx(6 / 9)
    assert entry.gate["previous_eval_hash"] == val_hash(SPLIT)[0]
    assert entry.gate["baseline_metrics"]["per_class_accuracy"]["closed"] == pytest.approx(99 / 113)


@pytest.mark.skipif(not SHARED.is_dir(), reason="needs the vehicle photos in ../shared/data")
def test_a_fresh_evaluation_of_the_shipped_files_reproduces_the_registry_and_the_gate_decides_on_it(
    models: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The whole path a trainer runs: evaluate the candidate through the edge's own code, then
    promote it; the report names its file and crops, and its figures are the registry's."""
    from training.truck_load.evaluate import run

    registry = Registry(models / "registry.json")
    eval_hash, _ = val_hash(SPLIT)
    reports = {}
    for version in ("1.1.0", "1.2.0"):
        entry = registry.get("truck-load", version)
        assert entry is not None
        report = run(REPO / "datasets" / "truck_load", SHARED / "vehicles", registry.file_of(entry))
        assert (report["model_sha256"], report["eval_hash"]) == (entry.sha256, eval_hash)
        assert report["macro_accuracy"] == pytest.approx(entry.metrics["macro_accuracy"], abs=1e-4)
        reports[version] = tmp_path / f"{version}.json"
        reports[version].write_text(json.dumps(report))
    assert promote(models, registry.file_of(registry.models[-1]), reports["1.2.0"]) == 1
    assert "class 'closed'" in capsys.readouterr().out


def shipped_counts() -> dict[str, tuple[int, int]]:
    """(crops, right) per class of truck-load 1.2.0 on the shipped val split (eval_edge_1.2.0.json)."""
    report = json.loads((SHIPPED / "eval_edge_1.2.0.json").read_text())
    return {name: (row["n"], row["correct"]) for name, row in report["per_class"].items()}


def write_report(
    path: Path, model: str, sha256: str, eval_hash: str, counts: dict[str, tuple[int, int]]
) -> Path:
    """A report shaped as ``training.truck_load.evaluate --json`` writes it."""
    per_class = {name: {"n": n, "correct": c, "accuracy": c / n} for name, (n, c) in counts.items()}
    report: dict[str, Any] = {
        "model": model,
        "model_sha256": sha256,
        "eval_hash": eval_hash,
        "per_class": per_class,
        "macro_accuracy": sum(row["accuracy"] for row in per_class.values()) / len(per_class),
        "accuracy": sum(c for _, c in counts.values()) / sum(n for n, _ in counts.values()),
    }
    path.write_text(json.dumps(report))
    return path


def moved_split(path: Path) -> Path:
    """The shipped split with one training open load moved to val."""
    with SPLIT.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    moved = next(r for r in rows if r["split"] == "train" and r["label"] == "uncovered")
    moved["split"] = "val"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path

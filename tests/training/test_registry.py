"""Model registry and the promotion gate: a worse candidate is refused, with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streetwatch.cli import main
from streetwatch.errors import ConfigError
from streetwatch.file_hash import sha256_file
from training.evaluate import ClassMetrics, EvalSummary
from training.registry import Registry


def summary(
    map50: float, per_class: dict[str, float], eval_hash: str = "e" * 64, model: Path | None = None
) -> EvalSummary:
    """A summary as 'streetwatch evaluate' writes it, of ``model`` (its sha256 ties them)."""
    return EvalSummary(
        model=str(model or "m.onnx"),
        model_sha256=sha256_file(model) if model else "",
        data="data.yaml",
        split="val",
        eval_hash=eval_hash,
        imgsz=416,
        map50=map50,
        map50_95=map50 / 2,
        precision=0.5,
        recall=0.5,
        per_class={n: ClassMetrics(0.5, 0.5, ap, ap / 2, 10, 5) for n, ap in per_class.items()},
    )


def tiny_onnx(path: Path, version: str, name: str = "streetwatch-det") -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph)
    for key, value in {"streetwatch_model": name, "version": version, "data_hash": "d" * 64}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def test_first_model_is_accepted_and_recorded(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    model = tmp_path / "a.onnx"
    model.write_bytes(b"model-a")
    decision = registry.promote(model, summary(0.6, {"truck": 0.7}, model=model), "det", "1.0.0", "d" * 64)
    assert decision.accepted
    reloaded = Registry(tmp_path / "registry.json")
    entry = reloaded.current_entry("det")
    assert entry is not None and entry.version == "1.0.0" and entry.parent is None
    assert entry.sha256 == sha256_file(model) and entry.file == "a.onnx"
    assert entry.metrics["per_class_ap50"] == {"truck": 0.7}


def test_worse_candidate_is_refused_and_the_registry_is_unchanged(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    (tmp_path / "a.onnx").write_bytes(b"a")
    (tmp_path / "b.onnx").write_bytes(b"b")
    registry.promote(
        tmp_path / "a.onnx",
        summary(0.6, {"truck": 0.7, "garbage": 0.5}, model=tmp_path / "a.onnx"),
        "det",
        "1",
        "d",
    )
    before = (tmp_path / "registry.json").read_text()

    worse = summary(0.55, {"truck": 0.6, "garbage": 0.5}, model=tmp_path / "b.onnx")
    decision = registry.promote(tmp_path / "b.onnx", worse, "det", "2", "d")

    assert not decision.accepted
    text = decision.explain()
    assert "map50 0.5500 is below the current 1's 0.6000" in text
    assert "'truck' AP50 0.6000 dropped" in text
    assert "'garbage'" not in text  # an unchanged class is not blamed
    assert (tmp_path / "registry.json").read_text() == before


def test_a_better_candidate_replaces_the_current_one_with_its_parent(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    (tmp_path / "a.onnx").write_bytes(b"a")
    (tmp_path / "b.onnx").write_bytes(b"b")
    registry.promote(
        tmp_path / "a.onnx", summary(0.6, {"truck": 0.7}, model=tmp_path / "a.onnx"), "det", "1", "d"
    )
    assert registry.promote(
        tmp_path / "b.onnx", summary(0.65, {"truck": 0.69}, model=tmp_path / "b.onnx"), "det", "2", "d"
    ).accepted
    assert registry.current == {"det": "2"}
    entry = registry.current_entry("det")
    assert entry is not None and entry.parent == "1"


def test_candidate_measured_on_another_set_is_refused(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    (tmp_path / "a.onnx").write_bytes(b"a")
    (tmp_path / "b.onnx").write_bytes(b"b")
    registry.promote(
        tmp_path / "a.onnx", summary(0.6, {"truck": 0.7}, model=tmp_path / "a.onnx"), "det", "1", "d"
    )
    decision = registry.promote(
        tmp_path / "b.onnx",
        summary(0.9, {"truck": 0.9}, "f" * 64, model=tmp_path / "b.onnx"),
        "det",
        "2",
        "d",
    )
    assert not decision.accepted and "different set" in decision.explain()


def test_duplicate_version_and_broken_registry_are_clear_errors(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.json")
    (tmp_path / "a.onnx").write_bytes(b"a")
    registry.promote(tmp_path / "a.onnx", summary(0.6, {}, model=tmp_path / "a.onnx"), "det", "1", "d")
    with pytest.raises(ConfigError, match="already registered"):
        registry.promote(tmp_path / "a.onnx", summary(0.7, {}, model=tmp_path / "a.onnx"), "det", "1", "d")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"bad\.json"):
        Registry(tmp_path / "bad.json")


def test_promote_command_refuses_a_worse_model_with_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = tmp_path / "registry.json"
    first, second = tiny_onnx(tmp_path / "v1.onnx", "1.0.0"), tiny_onnx(tmp_path / "v2.onnx", "1.1.0")
    good, worse = tmp_path / "good.json", tmp_path / "worse.json"
    good.write_text(json.dumps(summary(0.7, {"truck": 0.8}, model=first).to_json()))
    worse.write_text(json.dumps(summary(0.5, {"truck": 0.6}, model=second).to_json()))

    promote = ["model", "promote", "--registry", str(reg)]
    # a mistyped registry path is an error, not a fresh registry that accepts anything
    assert main([*promote, str(first), "--eval", str(good)]) == 1
    assert "does not exist (pass --new-registry" in capsys.readouterr().err
    assert main([*promote, str(first), "--eval", str(good), "--new-registry"]) == 0
    assert main([*promote, str(second), "--eval", str(worse)]) == 1
    out = capsys.readouterr().out
    assert "streetwatch-det 1.1.0: refused: map50 0.5000 is below" in out

    assert main(["model", "list", "--registry", str(reg)]) == 0
    listed = capsys.readouterr().out
    assert "* streetwatch-det 1.0.0" in listed and "1.1.0" not in listed
    assert "(file" not in listed

    # the registered file replaced by another build, then gone: the listing says so
    first.write_bytes(second.read_bytes())
    assert main(["model", "list", "--registry", str(reg)]) == 0
    assert "(file now holds another build)" in capsys.readouterr().out
    first.unlink()
    assert main(["model", "list", "--registry", str(reg)]) == 0
    assert "(file missing)" in capsys.readouterr().out


def test_a_summary_of_another_file_cannot_promote_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = tmp_path / "registry.json"
    first, second = tiny_onnx(tmp_path / "v1.onnx", "1.0.0"), tiny_onnx(tmp_path / "v2.onnx", "1.1.0")
    measured = tmp_path / "first.json"
    measured.write_text(json.dumps(summary(0.7, {"truck": 0.8}, model=first).to_json()))
    promote = ["model", "promote", "--registry", str(reg), "--new-registry", "--eval", str(measured)]
    assert main([*promote, str(second)]) == 1
    assert "the evaluation summary is not of" in capsys.readouterr().err
    assert not reg.exists()

    # a summary from before summaries named their file's hash is refused the same way
    old = json.loads(measured.read_text())
    del old["model_sha256"]
    measured.write_text(json.dumps(old))
    assert main([*promote, str(first)]) == 1
    assert "no sha256 recorded" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "expected"),
    [("[1]", "not a model registry"), (None, "is a folder")],
)
def test_a_registry_that_is_not_one_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    reg = tmp_path / "registry.json"
    if content is None:
        reg.mkdir()
    else:
        reg.write_text(content)
    assert main(["model", "list", "--registry", str(reg)]) == 1
    assert expected in capsys.readouterr().err


def test_promote_refuses_a_file_that_is_not_onnx(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"PK\x03\x04 not onnx")
    measured = tmp_path / "s.json"
    measured.write_text(json.dumps(summary(0.7, {}, model=weights).to_json()))
    assert (
        main(
            [
                "model",
                "promote",
                str(weights),
                "--eval",
                str(measured),
                "--registry",
                str(tmp_path / "r.json"),
            ]
        )
        == 1
    )
    assert "is not an ONNX model" in capsys.readouterr().err
    measured.write_text("[]")
    onnx_file = tiny_onnx(tmp_path / "m.onnx", "1")
    promote = [
        "model",
        "promote",
        str(onnx_file),
        "--eval",
        str(measured),
        "--registry",
        str(tmp_path / "r.json"),
    ]
    assert main([*promote, "--new-registry"]) == 1
    assert "is not an evaluation summary" in capsys.readouterr().err


# -- re-baselining the gate after the evaluation set's labels were corrected --------------------

OLD_SET, CORRECTED_SET = "e" * 64, "c" * 64


def registered_v1(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A registry whose current 1.0.0 was measured on the old labels; a 1.1.0 candidate file beside it."""
    reg = tmp_path / "registry.json"
    first, second = tiny_onnx(tmp_path / "v1.onnx", "1.0.0"), tiny_onnx(tmp_path / "v2.onnx", "1.1.0")
    old = tmp_path / "v1_old_labels.json"
    old.write_text(json.dumps(summary(0.7, {"truck": 0.8}, OLD_SET, model=first).to_json()))
    promote = ["model", "promote", str(first), "--eval", str(old), "--registry", str(reg)]
    assert main([*promote, "--new-registry"]) == 0
    return reg, first, second


def write_summary(path: Path, map50: float, per_class: dict[str, float], eval_hash: str, model: Path) -> Path:
    path.write_text(json.dumps(summary(map50, per_class, eval_hash, model=model).to_json()))
    return path


def test_a_corrected_eval_set_rebaselines_the_gate_on_the_current_model_re_evaluated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, first, second = registered_v1(tmp_path)
    # on the corrected labels the current model scores lower (its "false positives" were real signs);
    # the candidate is below the stored 0.7 but above the current model measured on the same labels
    candidate = write_summary(tmp_path / "v2.json", 0.65, {"truck": 0.79}, CORRECTED_SET, second)
    baseline = write_summary(tmp_path / "v1_new_labels.json", 0.6, {"truck": 0.78}, CORRECTED_SET, first)
    promote = ["model", "promote", str(second), "--eval", str(candidate), "--registry", str(reg)]

    # without a baseline the gate still refuses another set, and says how to re-baseline
    assert main(promote) == 1
    out = capsys.readouterr().out
    assert "refused: evaluated on a different set" in out and "--baseline-eval" in out
    before = reg.read_text()
    assert '"gate"' not in before  # entries of the ordinary gate keep the old format

    assert main([*promote, "--baseline-eval", str(baseline)]) == 0
    out = capsys.readouterr().out
    assert "1.1.0: accepted: gate re-baselined on 1.0.0 re-evaluated on cccccccccccc" in out
    assert "map50 0.6500 vs 0.6000" in out  # compared with the re-evaluation, not the stored 0.7

    registry = Registry(reg)
    entry = registry.current_entry("streetwatch-det")
    assert entry is not None and entry.version == "1.1.0" and entry.parent == "1.0.0"
    assert entry.eval_hash == CORRECTED_SET
    assert entry.gate["baseline"] == "1.0.0 re-evaluated on cccccccccccc"
    assert entry.gate["previous_eval_hash"] == OLD_SET
    assert entry.gate["baseline_metrics"]["map50"] == 0.6
    old_entry = registry.get("streetwatch-det", "1.0.0")
    assert old_entry is not None and old_entry.eval_hash == OLD_SET and old_entry.gate == {}
    # the listing says which entry was compared on another set than its parent
    assert main(["model", "list", "--registry", str(reg)]) == 0
    listed = {
        line.split("streetwatch-det ")[1].split()[0]: line
        for line in capsys.readouterr().out.splitlines()
        if "streetwatch-det" in line
    }
    assert "(gate re-baselined: 1.0.0 re-evaluated on cccccccccccc)" in listed["1.1.0"]
    assert "re-baselined" not in listed["1.0.0"]

    # the next candidate on the corrected set goes through the ordinary gate against 1.1.0's metrics
    third = tiny_onnx(tmp_path / "v3.onnx", "1.2.0")
    worse = write_summary(tmp_path / "v3.json", 0.62, {"truck": 0.79}, CORRECTED_SET, third)
    assert main(["model", "promote", str(third), "--eval", str(worse), "--registry", str(reg)]) == 1
    assert "map50 0.6200 is below the current 1.1.0's 0.6500" in capsys.readouterr().out


def test_a_rebaselined_gate_still_refuses_a_candidate_worse_than_the_re_evaluated_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, first, second = registered_v1(tmp_path)
    candidate = write_summary(tmp_path / "v2.json", 0.72, {"truck": 0.7}, CORRECTED_SET, second)
    baseline = write_summary(tmp_path / "v1_new.json", 0.75, {"truck": 0.85}, CORRECTED_SET, first)
    before = reg.read_text()
    promote = ["model", "promote", str(second), "--eval", str(candidate), "--registry", str(reg)]
    assert main([*promote, "--baseline-eval", str(baseline)]) == 1
    out = capsys.readouterr().out
    assert "map50 0.7200 is below the current 1.0.0's 0.7500" in out
    assert "'truck' AP50 0.7000 dropped more than 0.02 below 0.8500" in out
    assert reg.read_text() == before


def test_a_baseline_of_another_file_than_the_current_model_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, first, second = registered_v1(tmp_path)
    candidate = write_summary(tmp_path / "v2.json", 0.65, {"truck": 0.79}, CORRECTED_SET, second)
    # a re-evaluation of the candidate itself (or any other build) would let it set its own bar
    not_current = write_summary(tmp_path / "v2_again.json", 0.5, {"truck": 0.5}, CORRECTED_SET, second)
    before = reg.read_text()
    promote = ["model", "promote", str(second), "--eval", str(candidate), "--registry", str(reg)]
    assert main([*promote, "--baseline-eval", str(not_current)]) == 1
    err = capsys.readouterr().err
    assert "the baseline summary is not of the current streetwatch-det 1.0.0" in err
    assert f"the registered file is {sha256_file(first)[:12]}" in err and len(err.strip().splitlines()) == 1
    assert reg.read_text() == before


def test_a_baseline_on_another_set_than_the_candidate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg, first, second = registered_v1(tmp_path)
    candidate = write_summary(tmp_path / "v2.json", 0.65, {"truck": 0.79}, CORRECTED_SET, second)
    elsewhere = write_summary(tmp_path / "v1_other.json", 0.5, {"truck": 0.5}, "f" * 64, first)
    before = reg.read_text()
    promote = ["model", "promote", str(second), "--eval", str(candidate), "--registry", str(reg)]
    assert main([*promote, "--baseline-eval", str(elsewhere)]) == 1
    err = capsys.readouterr().err
    assert "eval hash ffffffffffff vs the candidate's cccccccccccc" in err
    assert reg.read_text() == before

    # with nothing registered there is no model to re-baseline: an error, not a silent first model
    fresh = tmp_path / "fresh.json"
    with pytest.raises(ConfigError, match="no current streetwatch-det to re-baseline"):
        Registry(fresh).promote(
            second,
            summary(0.65, {}, CORRECTED_SET, model=second),
            "streetwatch-det",
            "1.1.0",
            "d",
            baseline=summary(0.6, {}, CORRECTED_SET, model=first),
        )
    assert not fresh.exists()


def test_the_repository_registry_still_loads_and_saves_unchanged(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "models" / "registry.json"
    copy = tmp_path / "registry.json"
    copy.write_text(shipped.read_text())
    registry = Registry(copy)
    assert registry.current_entry("streetwatch-det") is not None
    registry.save()
    assert copy.read_text() == shipped.read_text()

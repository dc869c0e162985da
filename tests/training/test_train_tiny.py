"""A tiny real training run: real photos, 1 epoch, small images -> evaluation -> ONNX the edge runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streetwatch.cli import main
from training.recipes.first_model import CLASSES, prepare

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHECKPOINT = SHARED / "weights" / "yolov5n_coco_v6.1.pt"
SAMPLE_PHOTO = next((Path(__file__).resolve().parents[2] / "datasets" / "samples" / "images").glob("*.jpg"))

pytestmark = pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"needs {SHARED}")


@pytest.mark.slow
def test_tiny_training_run_end_to_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import cv2

    from edge.config import DetectorConfig
    from edge.detector import load_detector

    data = tmp_path / "data"
    prepare(SHARED, data, yolox=None, limit=3)  # 9 train and 9 val photos, 3 per source
    data_yaml = data / "data.yaml"
    start = tmp_path / "start.pt"
    assert main(["model", "convert", str(CHECKPOINT), str(start), "--data", str(data_yaml)]) == 0

    train_args = [
        "train",
        "--data",
        str(data_yaml),
        "--weights",
        str(start),
        "--project",
        "runs",  # relative on purpose: the run must land under the working directory
    ]
    monkeypatch.chdir(tmp_path)
    assert (
        main([*train_args, "--name", "tiny", "--epochs", "1", "--imgsz", "96", "--batch", "4", "--no-plots"])
        == 0
    )
    best = tmp_path / "runs" / "tiny" / "weights" / "best.pt"
    assert best.is_file()
    before = best.read_bytes()
    capsys.readouterr()
    # the finished run is neither trained over nor "resumed" into a fresh default training
    assert main([*train_args, "--name", "tiny", "--epochs", "1", "--imgsz", "96", "--batch", "4"]) == 1
    assert "already holds the weights of an earlier run" in capsys.readouterr().err
    assert main(["train", "--project", "runs", "--name", "tiny", "--resume"]) == 1
    assert "has finished; there is nothing to resume" in capsys.readouterr().err
    assert best.read_bytes() == before

    out = tmp_path / "eval"
    assert main(["evaluate", str(best), "--data", str(data_yaml), "--out", "eval", "--imgsz", "96"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 0.0 <= summary["map50"] <= 1.0 and set(summary["per_class"]) <= set(CLASSES)
    assert {"confusion_matrix.png", "BoxPR_curve.png"} <= set(summary["plots"])
    assert (out / "confusion_matrix.png").stat().st_size > 1000

    models = tmp_path / "models"
    export = [
        "model",
        "export",
        str(best),
        "--out-dir",
        str(models),
        "--version",
        "0.0.1",
        "--data",
        str(data_yaml),
    ]
    assert main([*export, "--imgsz", "96", "--formats", "fp32"]) == 0
    onnx_file = models / "streetwatch-det-0.0.1.onnx"
    detector = load_detector(
        DetectorConfig(model=str(onnx_file), conf=0.001, providers=["CPUExecutionProvider"])
    )
    image = cv2.imread(str(sorted((data / "val" / "images").iterdir())[0]))
    detections = detector.detect(image)
    assert set(detections.class_name.tolist()) <= set(CLASSES)
    assert capsys.readouterr().out.count("fp32:") == 1

    # The exported model is evaluated at its own input size, and says so in the summary.
    onnx_eval = tmp_path / "eval-onnx"
    evaluate_onnx = ["evaluate", str(onnx_file), "--data", str(data_yaml), "--out", str(onnx_eval)]
    assert main(evaluate_onnx) == 0
    assert json.loads((onnx_eval / "summary.json").read_text())["imgsz"] == 96
    assert main([*evaluate_onnx, "--imgsz", "128"]) == 1
    assert "takes 96 px input" in capsys.readouterr().err


def test_train_refuses_weights_it_would_have_to_download(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: {0: a}\n")
    code = main(["train", "--data", str(data), "--weights", "yolov5nu.pt", "--project", str(tmp_path)])
    assert code == 1
    assert "weights not found: yolov5nu.pt" in capsys.readouterr().err


def test_resume_without_a_previous_run_says_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.yaml"
    data.write_text("path: .\ntrain: images\nval: images\nnames: {0: a}\n")
    args = ["train", "--data", str(data), "--weights", "x.pt", "--project", str(tmp_path), "--name", "r"]
    assert main([*args, "--resume"]) == 1
    assert (
        f"nothing to resume: {tmp_path / 'r' / 'weights' / 'last.pt'} does not exist"
        in capsys.readouterr().err
    )


def test_a_dataset_with_missing_images_is_refused_before_a_run_folder_is_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data.yaml"
    data.write_text(
        f"path: {tmp_path}\ntrain: nowhere/images/train\nval: nowhere/images/val\nnames: {{0: a}}\n"
    )
    weights = tmp_path / "start.pt"
    weights.write_bytes(b"not read before the data is checked")
    code = main(
        ["train", "--data", str(data), "--weights", str(weights), "--project", str(tmp_path / "runs")]
    )
    assert code == 1
    assert "nowhere/images/train" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
    assert main(["train", "--project", str(tmp_path / "runs")]) == 1
    assert "--data and --weights are required" in capsys.readouterr().err

    photos = tmp_path / "nowhere" / "images"
    for split in ("train", "val"):
        (photos / split).mkdir(parents=True)
        (photos / split / "a.jpg").write_bytes(SAMPLE_PHOTO.read_bytes())
    code = main(
        ["train", "--data", str(data), "--weights", str(weights), "--project", str(tmp_path / "runs")]
    )
    assert code == 1
    assert f"{weights} is not an ultralytics checkpoint" in capsys.readouterr().err

"""ONNX export: self-describing FP32, FP16 and INT8 files the edge detector loads and runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.convert_yolov5 import convert
from training.export import (
    calibration_images,
    export_fp16,
    export_fp32,
    export_int8,
    head_postprocess_nodes,
    letterbox,
    read_metadata,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHECKPOINT = SHARED / "weights" / "yolov5n_coco_v6.1.pt"
PHOTOS = SHARED / "vehicles" / "val" / "images"
CLASSES = ["garbage", "garbage_bin", "overflow", "signboard", "car", "motor", "truck", "bus"]
IMGSZ = 128

pytestmark = pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"needs {CHECKPOINT}")


@pytest.fixture(scope="module")
def fp32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("export")
    start = folder / "start.pt"
    convert(CHECKPOINT, start, CLASSES)
    return export_fp32(start, folder / "det.onnx", "streetwatch-det", "0.1.0", "a" * 64, imgsz=IMGSZ)


def scores(model: Path, image: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: image})[0]
    return np.asarray(out[0, 4:, :])  # rows 0-3 are the box, the rest class scores


def test_fp32_metadata_names_classes_size_version_and_data(fp32: Path) -> None:
    meta = read_metadata(fp32)
    assert meta["streetwatch_model"] == "streetwatch-det"
    assert meta["version"] == "0.1.0"
    assert meta["data_hash"] == "a" * 64
    assert meta["precision"] == "fp32"
    assert meta["imgsz"] == f"[{IMGSZ}, {IMGSZ}]"
    assert meta["names"] == str(dict(enumerate(CLASSES)))
    assert meta["ultralytics_version"]  # the package version keeps a key of its own


def test_edge_detector_loads_the_export_and_reads_its_metadata(fp32: Path) -> None:
    import cv2

    from edge.config import DetectorConfig
    from edge.detector import load_detector

    detector = load_detector(DetectorConfig(model=str(fp32), conf=0.0001, providers=["CPUExecutionProvider"]))
    image = cv2.imread(str(sorted(PHOTOS.iterdir())[0]))
    detections = detector.detect(image)
    assert set(detections.class_name.tolist()) <= set(CLASSES)
    assert len(detections) > 0  # an untrained head still scores every class a little


def test_head_postprocess_nodes_are_the_decode_not_the_convs(fp32: Path) -> None:
    import onnx

    names = head_postprocess_nodes(onnx.load(str(fp32)))
    assert names and all(n.startswith("/model.24/") for n in names)
    assert not any("/cv2" in n or "/cv3" in n for n in names)
    assert any("dfl" in n for n in names) and any("Concat" in n for n in names)


def test_int8_keeps_scores_only_with_the_head_left_in_fp32(fp32: Path, tmp_path: Path) -> None:
    import cv2

    images = calibration_images(PHOTOS, 4)
    kept = export_int8(fp32, tmp_path / "int8.onnx", images)
    whole = export_int8(fp32, tmp_path / "int8_whole.onnx", images, exclude_postprocess=False)
    assert read_metadata(kept)["precision"] == "int8"
    assert read_metadata(kept)["names"] == read_metadata(fp32)["names"]

    image = letterbox(cv2.imread(str(images[0])), IMGSZ)
    reference = scores(fp32, image)
    assert reference.max() > 0
    # One scale for pixels and 0-1 scores rounds every score to zero ...
    assert scores(whole, image).max() < reference.max() / 10
    # ... while the FP32 head keeps them near the reference.
    assert np.abs(scores(kept, image) - reference).max() < reference.max() / 2


def test_fp16_halves_the_file_and_keeps_outputs_close(fp32: Path, tmp_path: Path) -> None:
    import cv2

    half = export_fp16(fp32, tmp_path / "fp16.onnx")
    assert half.stat().st_size < fp32.stat().st_size * 0.6
    assert read_metadata(half)["precision"] == "fp16"
    image = letterbox(cv2.imread(str(sorted(PHOTOS.iterdir())[0])), IMGSZ)
    assert np.allclose(scores(half, image), scores(fp32, image), atol=1e-3)


def test_export_command_checks_its_inputs_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from streetwatch.cli import main

    start = tmp_path / "start.pt"
    convert(CHECKPOINT, start, CLASSES)
    data = tmp_path / "data.yaml"
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(next(PHOTOS.glob("*.jpg")).read_bytes())
    splits = {"train": str(photos), "val": str(photos)}
    data.write_text(yaml.safe_dump({**splits, "names": dict(enumerate(CLASSES))}))
    out = tmp_path / "out"
    export = ["model", "export", str(start), "--out-dir", str(out), "--version", "1", "--imgsz", str(IMGSZ)]

    empty = tmp_path / "no-photos"
    empty.mkdir()
    assert main([*export, "--data", str(data), "--formats", "int8", "--calib", str(empty)]) == 1
    assert "no calibration images" in capsys.readouterr().err
    assert not out.exists()  # no FP32 left behind by an export that could not finish

    # the data hash written into the model claims that data trained it: the classes must agree
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**splits, "names": {0: "garbage", 1: "signboard"}}))
    assert main([*export, "--data", str(other), "--formats", "fp32"]) == 1
    assert "has classes" in capsys.readouterr().err
    assert not out.exists()
    assert main([*export, "--data", str(data), "--formats", "fp32"]) == 0  # and the right yaml works
    written = out / "streetwatch-det-1.onnx"
    first = written.read_bytes()
    # a version names one file for good: exporting it again is refused unless asked for
    capsys.readouterr()
    assert main([*export, "--data", str(data), "--formats", "fp32"]) == 1
    assert "exists; give the candidate a new --version" in capsys.readouterr().err
    assert written.read_bytes() == first
    assert main([*export, "--data", str(data), "--formats", "fp32", "--overwrite"]) == 0

    onnx_in = ["model", "export", str(written), "--out-dir", str(out), "--version", "2", "--data", str(data)]
    assert main(onnx_in) == 1
    assert "is not a .pt checkpoint" in capsys.readouterr().err
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    junk_in = ["model", "export", str(junk), "--out-dir", str(out), "--version", "3", "--data", str(data)]
    assert main([*junk_in, "--formats", "fp32"]) == 1
    assert f"{junk} is not an ultralytics checkpoint" in capsys.readouterr().err

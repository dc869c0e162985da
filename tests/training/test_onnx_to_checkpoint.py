"""A shipped ONNX detector turned back into a trainable checkpoint that computes what it computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from streetwatch.errors import ModelFormatError, ModelNotFoundError
from training.convert_yolov5 import convert
from training.export import export_fp32
from training.onnx_to_checkpoint import recover

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHECKPOINT = SHARED / "weights" / "yolov5n_coco_v6.1.pt"
PHOTOS = sorted((SHARED / "signboards" / "val" / "images").glob("*"))[:10]
CLASSES = ["garbage", "garbage_bin", "overflow", "signboard", "car", "motor", "truck", "bus"]

pytestmark = pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"needs {CHECKPOINT}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("recover")
    convert(CHECKPOINT, folder / "start.pt", CLASSES)
    return export_fp32(
        folder / "start.pt", folder / "det.onnx", "streetwatch-det", "0.1.0", "a" * 64, imgsz=128
    )


def test_the_recovered_checkpoint_exports_to_the_same_outputs(exported: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    from training.export import letterbox

    report = recover(exported, tmp_path / "back.pt", PHOTOS)
    assert report.batch_norms > 50 and report.calibration_photos == 10
    assert report.max_diff < 1e-2
    again = export_fp32(
        tmp_path / "back.pt", tmp_path / "again.onnx", "streetwatch-det", "0.1.1", "b" * 64, imgsz=128
    )
    import cv2

    photo = cv2.imread(str(PHOTOS[0]))
    assert photo is not None
    x = letterbox(photo, 128)
    outs = []
    for path in (exported, again):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outs.append(session.run(None, {session.get_inputs()[0].name: x})[0])
    # class scores (rows 4..) agree; the checkpoint is stored in half precision, hence the tolerance
    assert np.abs(outs[0][0, 4:] - outs[1][0, 4:]).max() < 5e-3


def test_the_recovered_batch_norms_hold_real_statistics(exported: Path, tmp_path: Path) -> None:
    import torch

    recover(exported, tmp_path / "back.pt", PHOTOS)
    model = torch.load(tmp_path / "back.pt", weights_only=False)["model"].float()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # identity statistics (mean 0, variance ~1) would make train-mode batch statistics rescale every layer
    means = [m.running_mean for m in norms if m.running_mean is not None]
    assert sum(float(mean.abs().mean()) > 1e-3 for mean in means) > len(norms) // 2


def test_another_architecture_or_too_few_photos_writes_nothing(exported: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"does not fit|no fused conv"):
        recover(exported, tmp_path / "x.pt", PHOTOS, arch="yolov8n.yaml")
    with pytest.raises(ModelFormatError, match="at least 8"):
        recover(exported, tmp_path / "y.pt", PHOTOS[:3])
    assert not (tmp_path / "x.pt").exists() and not (tmp_path / "y.pt").exists()


def test_a_missing_or_damaged_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no ONNX detector at"):
        recover(tmp_path / "absent.onnx", tmp_path / "x.pt", PHOTOS)
    (tmp_path / "bad.onnx").write_bytes(b"not a model at all")
    with pytest.raises(ModelFormatError, match="is not an ONNX model"):
        recover(tmp_path / "bad.onnx", tmp_path / "x.pt", PHOTOS)
    assert not (tmp_path / "x.pt").exists()

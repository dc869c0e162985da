"""The COCO YOLOv5 v6.1 checkpoint moves into an ultralytics yolov5nu model by name and shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from streetwatch.errors import ModelFormatError, ModelNotFoundError
from training.convert_yolov5 import convert, read_yolov5_checkpoint, transfer

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CHECKPOINT = SHARED / "weights" / "yolov5n_coco_v6.1.pt"
CLASSES = ["garbage", "garbage_bin", "overflow", "signboard", "car", "motor", "truck", "bus"]

needs_checkpoint = pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"needs {CHECKPOINT}")


@needs_checkpoint
def test_reads_the_original_checkpoint_without_the_yolov5_code() -> None:
    tensors, names = read_yolov5_checkpoint(CHECKPOINT)
    assert len(names) == 80 and names[0] == "person" and names[7] == "truck"
    assert len(tensors) == 292
    assert tuple(tensors["model.0.conv.weight"].shape) == (16, 3, 6, 6)
    assert "model.24.anchors" in tensors


@needs_checkpoint
def test_converts_backbone_and_neck_and_saves_a_trainable_checkpoint(tmp_path: Path) -> None:
    import torch
    from ultralytics import YOLO

    out = tmp_path / "start.pt"
    report = convert(CHECKPOINT, out, CLASSES)

    assert report.transferred_count == 285
    assert report.shape_mismatch == []
    assert sorted(report.missing_in_target) == sorted(
        ["model.24.anchors"] + [f"model.24.m.{i}.{p}" for i in range(3) for p in ("weight", "bias")]
    )
    model = YOLO(str(out))
    assert model.names == dict(enumerate(CLASSES))
    assert model.ckpt is not None  # train() fine-tunes these weights instead of re-initialising
    source, _ = read_yolov5_checkpoint(CHECKPOINT)
    state = model.model.state_dict()
    for name in ("model.0.conv.weight", "model.9.cv2.bn.running_var", "model.23.m.0.cv2.conv.weight"):
        assert torch.allclose(state[name].float(), source[name], atol=1e-3), name


def test_transfer_matches_by_name_and_shape_only() -> None:
    import torch

    source = {"a": torch.ones(2), "b": torch.ones(3), "c": torch.ones(1)}
    target = {"a": torch.zeros(2), "b": torch.zeros(4)}
    merged, report = transfer(source, target)
    assert report.transferred == ["a"]
    assert report.shape_mismatch == ["b"]
    assert report.missing_in_target == ["c"]
    assert merged["a"].sum() == 2 and merged["b"].sum() == 0


def test_missing_and_broken_checkpoints_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="not found"):
        read_yolov5_checkpoint(tmp_path / "absent.pt")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ModelFormatError, match=r"broken\.pt"):
        read_yolov5_checkpoint(broken)


@needs_checkpoint
def test_an_architecture_the_weights_do_not_fit_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "start.pt"
    with pytest.raises(ModelFormatError, match=r"transferred 0 of 292 .* architectures do not match"):
        convert(CHECKPOINT, out, ["garbage", "truck"], arch="yolov8s.yaml")
    assert not out.exists()

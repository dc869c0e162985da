"""Trainable ultralytics weights recovered from a shipped ONNX detector, to fine-tune it further.

Training runs are never committed, so a shipped model's ``.pt`` is gone once its run folder is;
the ONNX file in ``models/`` is what remains. Its initializers carry the ultralytics parameter
names (``model.0.conv.weight``), but export *fused* each convolution with its batch norm. This
module builds the architecture again and undoes the fusion in a way that keeps the function:

1. every fused conv's weight goes back into the conv; its bias into the batch norm, set to the
   identity (mean 0, variance 1 - eps, scale 1), so the model in eval mode *is* the ONNX model;
2. the batch norms are then recalibrated: each conv's output mean and variance per channel are
   measured on real photos, and the batch norm is given those statistics with a scale and shift
   that cancel them (scale sqrt(var + eps), shift bias + mean). Eval-mode output stays identical,
   and in train mode, where batch statistics replace the running ones, the layer still computes
   nearly what the ONNX model computes, so fine-tuning starts from the shipped model rather than
   from a shaken copy of it.

The recovered model is checked against ONNX Runtime on the calibration photos before it is
written; a mismatch (another architecture, a stripped file) writes nothing.

    streetwatch model recover models/streetwatch-det/streetwatch-det.onnx /work/runs/det-1.2.0.pt \\
        --calib /work/runs/data/train/images
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streetwatch.errors import ModelFormatError, ModelNotFoundError
from training.export import letterbox_file

log = logging.getLogger(__name__)

DEFAULT_ARCH = "yolov5nu.yaml"
SHIPPED = "models/streetwatch-det/streetwatch-det.onnx"
#: Largest difference allowed between the recovered model's raw output and ONNX Runtime's.
MAX_OUTPUT_DIFF = 1e-2


@dataclass(frozen=True)
class RecoverReport:
    tensors: int  # weights and biases placed in the model
    batch_norms: int  # batch norms recalibrated
    calibration_photos: int
    max_diff: float  # largest |recovered - ONNX| over the raw outputs of the check photos


def recover(
    onnx_path: Path, output: Path, calibration: Sequence[Path], arch: str = DEFAULT_ARCH
) -> RecoverReport:
    """Write an ultralytics checkpoint equal to ``onnx_path`` (see the module docstring)."""
    import onnx
    import onnxruntime as ort
    import torch
    from ultralytics.nn.modules.conv import Conv
    from ultralytics.nn.tasks import DetectionModel

    if not onnx_path.is_file():
        raise ModelNotFoundError(f"no ONNX detector at {onnx_path}; pass the shipped file, e.g. {SHIPPED}")
    try:
        proto = onnx.load(str(onnx_path))
    except Exception as exc:  # onnx raises protobuf's DecodeError and others on a file that is not ONNX
        raise ModelFormatError(f"{onnx_path} is not an ONNX model ({type(exc).__name__})") from exc
    meta = {p.key: p.value for p in proto.metadata_props}
    if "names" not in meta or "imgsz" not in meta:
        raise ModelFormatError(f"{onnx_path}: no 'names'/'imgsz' metadata; not an ultralytics export")
    names: dict[int, str] = ast.literal_eval(meta["names"])
    size = int(ast.literal_eval(meta["imgsz"])[0])
    convs = _conv_tensors(proto)
    model = DetectionModel(arch, nc=len(names), verbose=False)
    state = model.state_dict()
    placed = 0
    conv_modules = {name: m for name, m in model.named_modules() if isinstance(m, Conv) and hasattr(m, "bn")}
    with torch.no_grad():
        for name, module in conv_modules.items():
            weight, bias = convs.pop(f"{name}.conv", (None, None))
            if weight is None or bias is None or weight.shape != module.conv.weight.shape:
                raise ModelFormatError(f"{onnx_path}: no fused conv {name} fitting {arch}; nothing written")
            module.conv.weight.copy_(weight)
            bn: Any = module.bn  # running stats are Optional in torch's types; a Conv's bn tracks them
            bn.weight.fill_(1.0)
            bn.bias.copy_(bias)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            placed += 2
        for name, (weight, bias) in convs.items():  # the head's plain convs; DFL's fixed one is built in
            if name.endswith(".dfl.conv"):
                continue
            key = f"{name}.weight"
            if key not in state or state[key].shape != weight.shape or bias is None:
                raise ModelFormatError(f"{onnx_path}: conv {name} does not fit {arch}; nothing written")
            state[key].copy_(weight)
            state[f"{name}.bias"].copy_(bias)
            placed += 2
    model.eval()
    photos = [x for x in (letterbox_file(p, size) for p in calibration) if x is not None]
    if len(photos) < 8:
        raise ModelFormatError(f"need at least 8 readable calibration photos, got {len(photos)}")
    _recalibrate(model, conv_modules, photos)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    max_diff = 0.0
    with torch.no_grad():
        for x in photos[:8]:
            ours = model(torch.from_numpy(x))[0].numpy()
            theirs = session.run(None, {input_name: x})[0]
            max_diff = max(max_diff, float(np.abs(ours - theirs).max()))
    if max_diff > MAX_OUTPUT_DIFF:
        raise ModelFormatError(
            f"{onnx_path}: recovered model differs from ONNX Runtime by {max_diff:.4f} "
            f"(> {MAX_OUTPUT_DIFF}); nothing written"
        )
    model.names = names
    output.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "model": model.half(),
        # train() reads these as the defaults of the run; "model" tells it where the weights came from.
        "train_args": {"model": str(output), "task": "detect", "imgsz": size},
        "epoch": -1,
        "streetwatch": {"recovered_from": str(onnx_path), "version": meta.get("version"), "arch": arch},
    }
    torch.save(checkpoint, output)
    report = RecoverReport(placed, len(conv_modules), len(photos), max_diff)
    log.info("%s -> %s: %s", onnx_path.name, output, report)
    return report


def _conv_tensors(proto: Any) -> dict[str, tuple[Any, Any]]:
    """Per conv module path (``model.24.cv2.0.1.conv``): its weight and bias, read from the graph.

    Read through the Conv nodes, not by initializer name: the exporter's simplifier merges equal
    initializers (two fresh biases of zeros), so a conv may use a tensor named after another one.
    Node names are torch's scopes, e.g. ``/model.2/m/m.0/cv1/conv/Conv``, where a list's scope
    (``m``) is followed by its item's (``m.0``).
    """
    import torch
    from onnx import numpy_helper

    initializers = {init.name: init for init in proto.graph.initializer}
    out: dict[str, tuple[Any, Any]] = {}
    for node in proto.graph.node:
        if node.op_type != "Conv" or node.input[1] not in initializers:
            continue
        parts: list[str] = []
        for scope in node.name.strip("/").split("/")[:-1]:
            if parts and scope.startswith(parts[-1] + "."):
                parts[-1] = scope
            else:
                parts.append(scope)
        tensors = [
            torch.from_numpy(numpy_helper.to_array(initializers[name]).copy())
            for name in node.input[1:3]
            if name in initializers
        ]
        out[".".join(parts)] = (tensors[0], tensors[1] if len(tensors) > 1 else None)
    return out


def _recalibrate(model: Any, convs: dict[str, Any], photos: Sequence[np.ndarray]) -> None:
    """Give each batch norm its conv's real output statistics, with scale and shift that cancel them."""
    import torch

    sums: dict[str, torch.Tensor] = {}
    squares: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}

    def hook(name: str) -> Any:
        def record(_module: Any, _inputs: Any, out: torch.Tensor) -> None:
            values = out.detach().double().transpose(0, 1).reshape(out.shape[1], -1)
            sums[name] = sums.get(name, 0) + values.sum(1)
            squares[name] = squares.get(name, 0) + (values**2).sum(1)
            counts[name] = counts.get(name, 0) + values.shape[1]

        return record

    handles = [m.conv.register_forward_hook(hook(n)) for n, m in convs.items()]
    try:
        with torch.no_grad():
            for x in photos:
                model(torch.from_numpy(x))
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        for name, module in convs.items():
            mean = sums[name] / counts[name]
            var = (squares[name] / counts[name] - mean**2).clamp(min=1e-6)
            bn = module.bn
            bias = bn.bias.double().clone()  # the fused bias, stored there by recover()
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
            bn.weight.copy_((var + bn.eps).sqrt())
            bn.bias.copy_(bias + mean)

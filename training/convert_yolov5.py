"""Move the COCO-pretrained YOLOv5 (v6.x) backbone and neck into an ultralytics ``yolov5nu`` model.

The original YOLOv5 checkpoints are a pickled ``models.yolo.Model`` that needs the
yolov5 repository's code on ``sys.path``; the ultralytics package refuses them. We
never import that code: a custom unpickler turns every ``models.*`` / ``utils.*``
class into an inert stand-in, and the tensors are read straight from each module's
``__dict__`` (``_parameters``, ``_buffers``, ``_modules``) because the pickled
modules come from an older torch whose attribute layout ``state_dict()`` no longer
understands. Tensors are then copied into a fresh ultralytics model wherever the
name and the shape agree: everything but the anchor-based head (the ultralytics
head is anchor-free and sized for our classes, so it starts fresh).

The result is saved as an ultralytics checkpoint (``{"model": ..., "train_args": ...}``)
so that ``YOLO(path).train()`` fine-tunes these weights instead of re-initialising.
"""

from __future__ import annotations

import logging
import pickle
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streetwatch.errors import ModelFormatError, ModelNotFoundError

log = logging.getLogger(__name__)

#: Module prefixes of the yolov5 repository whose classes we replace by stand-ins.
FOREIGN_PREFIXES: tuple[str, ...] = ("models", "utils")

#: The ultralytics architecture the YOLOv5 v6 layout maps onto, layer for layer.
DEFAULT_ARCH = "yolov5nu.yaml"
#: Below this share of the source's tensors moved, the start is not a COCO start: refuse it.
MIN_TRANSFERRED_SHARE = 0.5


class ForeignObject:
    """Stand-in for a pickled yolov5-repository object: keeps its state, runs no code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._init_args = args

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["_state"] = state


class _ForeignUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] in FOREIGN_PREFIXES:
            # A fresh subclass per name keeps the original class name visible when debugging.
            return type(name, (ForeignObject,), {"__module__": f"foreign.{module}"})
        return super().find_class(module, name)


#: A ``pickle``-like module for ``torch.load(pickle_module=...)``.
foreign_pickle = types.ModuleType("foreign_pickle")
foreign_pickle.Unpickler = _ForeignUnpickler  # type: ignore[attr-defined]
foreign_pickle.load = pickle.load  # type: ignore[attr-defined]
foreign_pickle.__name__ = "foreign_pickle"


@dataclass
class TransferReport:
    """What moved from the source checkpoint into the new model."""

    source_tensors: int
    target_tensors: int
    transferred: list[str] = field(default_factory=list)
    shape_mismatch: list[str] = field(default_factory=list)
    missing_in_target: list[str] = field(default_factory=list)

    @property
    def transferred_count(self) -> int:
        return len(self.transferred)

    def summary(self) -> str:
        return (
            f"transferred {self.transferred_count} of {self.source_tensors} source tensors "
            f"(target model has {self.target_tensors}); "
            f"{len(self.shape_mismatch)} shape mismatches, {len(self.missing_in_target)} names absent"
        )


def _collect_tensors(module: Any, prefix: str, out: dict[str, Any]) -> None:
    """Walk a pickled module tree through ``__dict__`` (works for stand-ins and old torch modules)."""
    state = getattr(module, "__dict__", {})
    for kind in ("_parameters", "_buffers"):
        for name, tensor in (state.get(kind) or {}).items():
            # BatchNorm's step counter is bookkeeping, not a learned weight: leave it out of the count.
            if tensor is not None and name != "num_batches_tracked":
                out[f"{prefix}{name}"] = tensor
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _collect_tensors(child, f"{prefix}{name}.", out)


def read_yolov5_checkpoint(path: Path) -> tuple[dict[str, Any], list[str]]:
    """Return (tensor name -> float32 tensor, COCO class names) from an original YOLOv5 ``.pt``."""
    import torch

    if not path.is_file():
        raise ModelNotFoundError(f"YOLOv5 checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", pickle_module=foreign_pickle, weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise ModelFormatError(f"{path} is not a readable torch checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict):
        raise ModelFormatError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    model = ckpt.get("ema") or ckpt.get("model")
    if model is None:
        raise ModelFormatError(f"{path}: checkpoint has neither 'model' nor 'ema'")
    tensors: dict[str, Any] = {}
    _collect_tensors(model, "", tensors)
    if not tensors:
        raise ModelFormatError(f"{path}: no tensors found in the pickled model")
    names_raw = getattr(model, "__dict__", {}).get("names", [])
    names = list(names_raw.values()) if isinstance(names_raw, dict) else list(names_raw)
    return {k: v.float() for k, v in tensors.items()}, names


def transfer(source: dict[str, Any], target_state: dict[str, Any]) -> tuple[dict[str, Any], TransferReport]:
    """Copy source tensors into a copy of ``target_state`` where name and shape agree."""
    report = TransferReport(source_tensors=len(source), target_tensors=len(target_state))
    merged = dict(target_state)
    for name, tensor in source.items():
        if name not in target_state:
            report.missing_in_target.append(name)
        elif tuple(target_state[name].shape) != tuple(tensor.shape):
            report.shape_mismatch.append(name)
        else:
            merged[name] = tensor.to(target_state[name].dtype)
            report.transferred.append(name)
    return merged, report


def convert(
    source: Path,
    output: Path,
    class_names: list[str],
    arch: str = DEFAULT_ARCH,
) -> TransferReport:
    """Build ``arch`` for ``class_names``, load matching COCO tensors, save an ultralytics checkpoint."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    if not class_names:
        raise ValueError("class_names must not be empty")
    tensors, coco_names = read_yolov5_checkpoint(source)
    model = DetectionModel(arch, nc=len(class_names), verbose=False)
    merged, report = transfer(tensors, model.state_dict())
    if report.transferred_count < MIN_TRANSFERRED_SHARE * report.source_tensors:
        # A start with (almost) no COCO features is a from-scratch start that claims otherwise.
        raise ModelFormatError(
            f"{source.name} -> {arch}: {report.summary()}; the architectures do not match "
            f"(YOLOv5n weights fit {DEFAULT_ARCH}); nothing written"
        )
    model.load_state_dict(merged)
    model.names = dict(enumerate(class_names))
    log.info("%s: %s", source.name, report.summary())
    output.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = {
        "model": model.half(),
        # train() reads these as the defaults of the run; "model" tells it where the weights came from.
        "train_args": {"model": str(output), "task": "detect", "imgsz": 416},
        "epoch": -1,
        "streetwatch": {
            "source": str(source),
            "source_classes": len(coco_names),
            "transferred": report.transferred_count,
            "source_tensors": report.source_tensors,
            "arch": arch,
        },
    }
    torch.save(checkpoint, output)
    return report

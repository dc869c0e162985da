"""What a model says about itself: ONNX ``metadata_props`` and an optional sidecar YAML.

Ultralytics exports write ``names`` (a Python dict literal such as ``{0: 'person'}``),
``imgsz`` (``[640, 640]``), ``version``, ``description``, ``args`` (with ``nms``) and
``end2end``; our training adds ``streetwatch_model``, ``version`` and ``data_hash``.

Models without metadata (YOLOX) get a sidecar: ``<model>.yaml`` next to
``<model>.onnx``, with any of ``name``, ``version``, ``decoder``, ``imgsz``,
``class_names`` (a list) or ``class_names_file`` (a YAML list / ``names:`` mapping,
relative to the sidecar). Precedence: config > sidecar > ONNX metadata > defaults.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streetwatch.errors import ModelFormatError


@dataclass(frozen=True)
class ModelMetadata:
    """Everything optional: a field is ``None`` when the model does not say."""

    name: str | None = None
    version: str | None = None
    class_names: tuple[str, ...] | None = None
    input_hw: tuple[int, int] | None = None
    decoder: str | None = None
    data_hash: str | None = None
    nms_included: bool | None = None

    def merged_over(self, base: ModelMetadata) -> ModelMetadata:
        """This metadata, with ``base`` filling the fields this one leaves ``None``."""
        return ModelMetadata(
            **{k: v if v is not None else getattr(base, k) for k, v in self.__dict__.items()}
        )


def parse_class_names(value: Any, where: str) -> tuple[str, ...]:
    """Class names from a list, an ``{index: name}`` mapping or a ``{names: ...}`` document."""
    if isinstance(value, dict) and "names" in value:
        value = value["names"]
    if isinstance(value, dict):
        try:
            indices = sorted(int(k) for k in value)
        except (TypeError, ValueError) as exc:
            raise ModelFormatError(
                f"{where}: class-name keys must be integers, got {list(value)[:5]}"
            ) from exc
        if indices != list(range(len(indices))):
            raise ModelFormatError(f"{where}: class indices must be 0..{len(indices) - 1} without gaps")
        by_index = {int(k): v for k, v in value.items()}
        return tuple(str(by_index[i]) for i in indices)
    if isinstance(value, list) and value:
        return tuple(str(v) for v in value)
    raise ModelFormatError(f"{where}: expected a list of class names or an {{index: name}} mapping")


def load_class_names_file(path: str | Path) -> tuple[str, ...]:
    """Read class names from YAML (list, mapping or ``names:``) or plain text (one name per line)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ModelFormatError(f"cannot read class-names file {path}: {exc}") from exc
    if path.suffix.lower() in (".txt", ".names"):
        names = [line.strip() for line in text.splitlines() if line.strip()]
        return parse_class_names(names, str(path))
    try:
        return parse_class_names(yaml.safe_load(text), str(path))
    except yaml.YAMLError as exc:
        raise ModelFormatError(f"class-names file {path} is not valid YAML: {exc}") from exc


def _parse_imgsz(value: Any, where: str) -> tuple[int, int]:
    if isinstance(value, str):
        value = ast.literal_eval(value)
    if isinstance(value, int):
        return (value, value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return (int(value[0]), int(value[1]))
    raise ModelFormatError(f"{where}: imgsz must be N or [height, width], got {value!r}")


def from_onnx_props(props: dict[str, str], where: str) -> ModelMetadata:
    """Parse an ONNX ``custom_metadata_map`` (all values are strings)."""
    names = None
    if "names" in props:
        try:
            names = parse_class_names(ast.literal_eval(props["names"]), f"{where} metadata 'names'")
        except (ValueError, SyntaxError) as exc:
            raise ModelFormatError(f"{where}: metadata 'names' is not a dict literal: {exc}") from exc
    nms_included = None
    if "args" in props:
        try:
            args = ast.literal_eval(props["args"])
            nms_included = bool(args.get("nms")) if isinstance(args, dict) else None
        except (ValueError, SyntaxError):
            nms_included = None  # an unparseable 'args' only costs us a hint; the output shape decides
    if props.get("end2end", "").lower() == "true":
        nms_included = True
    name = props.get("streetwatch_model")
    return ModelMetadata(
        name=name,
        # Without our own key the 'version' ultralytics writes is its package version, still worth reporting.
        version=props.get("version"),
        class_names=names,
        input_hw=_parse_imgsz(props["imgsz"], f"{where} metadata 'imgsz'") if "imgsz" in props else None,
        data_hash=props.get("data_hash"),
        nms_included=nms_included,
    )


def sidecar_path(model_path: Path) -> Path:
    return model_path.with_suffix(".yaml")


def from_sidecar(model_path: Path) -> ModelMetadata:
    """Read ``<model>.yaml`` if it exists; an empty :class:`ModelMetadata` if not."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return ModelMetadata()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ModelFormatError(f"model sidecar {path} cannot be read: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelFormatError(f"model sidecar {path} must be a YAML mapping")
    known = {"name", "version", "decoder", "imgsz", "class_names", "class_names_file", "data_hash", "licence"}
    unknown = set(raw) - known
    if unknown:
        raise ModelFormatError(
            f"model sidecar {path}: unknown keys {sorted(unknown)}; allowed: {sorted(known)}"
        )
    names = None
    if "class_names" in raw:
        names = parse_class_names(raw["class_names"], str(path))
    elif "class_names_file" in raw:
        names = load_class_names_file(path.parent / str(raw["class_names_file"]))
    return ModelMetadata(
        name=str(raw["name"]) if "name" in raw else None,
        version=str(raw["version"]) if "version" in raw else None,
        class_names=names,
        input_hw=_parse_imgsz(raw["imgsz"], str(path)) if "imgsz" in raw else None,
        decoder=str(raw["decoder"]) if "decoder" in raw else None,
        data_hash=str(raw["data_hash"]) if "data_hash" in raw else None,
    )

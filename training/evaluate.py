"""Evaluate a detector (``.pt`` or ONNX: FP32, FP16 or INT8) on a YOLO split.

Writes into ``out_dir``: ``summary.json`` (mAP50, mAP50-95, per-class precision /
recall / AP50 / AP50-95 and instance counts, the eval split's content hash and the
inference speed), plus ultralytics' plots: confusion matrix and PR curve PNGs.

The eval split's hash goes into the summary because the promotion gate only compares
models measured on the very same images and labels.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streetwatch.errors import ConfigError, ModelNotFoundError
from streetwatch.file_hash import sha256_file
from training.data_hash import class_names, split_hash, split_images
from training.train import go_offline


@dataclass
class ClassMetrics:
    precision: float
    recall: float
    ap50: float
    ap50_95: float
    instances: int
    images: int


@dataclass
class EvalSummary:
    model: str
    data: str
    split: str
    eval_hash: str
    imgsz: int
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class: dict[str, ClassMetrics] = field(default_factory=dict)
    ms_per_image: float = 0.0
    plots: list[str] = field(default_factory=list)
    # The measured file's content hash: the promotion gate accepts a summary only for that file.
    model_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvalSummary:
        per_class = {name: ClassMetrics(**values) for name, values in data.get("per_class", {}).items()}
        return cls(**{**data, "per_class": per_class})

    @classmethod
    def load(cls, path: Path) -> EvalSummary:
        if not path.is_file():
            raise ConfigError(f"evaluation summary not found: {path}")
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, found {type(data).__name__}")
            return cls.from_json(data)
        except (json.JSONDecodeError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{path} is not an evaluation summary: {exc}") from exc


#: Input size for a .pt model when none is given (an ONNX model has its own, fixed one).
DEFAULT_PT_IMGSZ = 416


def _input_size(model_path: Path, model: Any) -> int:
    """The square input size an exported model was built for (its input is 1x3xSxS)."""
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[2] <= 0 or dims[2] != dims[3]:
        raise ConfigError(f"{model_path}: expected a fixed 1x3xSxS input, found {dims}")
    return int(dims[2])


def _check_same_classes(model_path: Path, model_names: list[str], data_yaml: Path) -> None:
    """Labels are scored by class id: a yaml that names the ids differently would score garbage
    boxes as trucks and report it as a result."""
    data_names = class_names(data_yaml)
    if model_names != data_names:
        raise ConfigError(
            f"{model_path.name} has classes {model_names} but {data_yaml} names {data_names}; "
            "evaluate on a dataset written with the model's class list"
        )


def check_detector_onnx(model_path: Path, data_yaml: Path) -> int:
    """An ultralytics detector export of these classes: names in its metadata, output 1x(4+nc)xN.
    Returns its (fixed, square) input size.

    Other ONNX models (YOLOX, NanoDet, a classifier) decode differently; ultralytics' validator
    would fail on them with an index error or, worse, produce numbers.
    """
    import ast

    import onnx

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others on a broken file
        raise ConfigError(f"{model_path} is not a readable ONNX model: {exc}") from exc
    meta = {p.key: p.value for p in model.metadata_props}
    try:
        parsed = ast.literal_eval(meta.get("names", ""))
        names = [str(parsed[i]) for i in sorted(parsed)]
    except (ValueError, SyntaxError, TypeError, KeyError):
        raise ConfigError(
            f"{model_path.name} carries no class names in its metadata: only detectors exported by "
            "'streetwatch model export' (ultralytics) can be evaluated here"
        ) from None
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    if len(dims) != 3 or dims[1] != 4 + len(names):
        raise ConfigError(
            f"{model_path.name}: output {dims} is not an ultralytics detector's 1x(4+{len(names)})xN"
        )
    _check_same_classes(model_path, names, data_yaml)
    return _input_size(model_path, model)


def evaluate(
    model_path: Path,
    data_yaml: Path,
    out_dir: Path,
    imgsz: int | None = None,
    split: str = "val",
    batch: int = 16,
    conf: float = 0.001,
) -> EvalSummary:
    """Validate ``model_path`` on ``split`` of ``data_yaml`` and save the summary and plots in ``out_dir``.

    ``imgsz`` defaults to an ONNX model's own input size (416 for a .pt); an ONNX model asked
    for another size is refused, because ultralytics would silently use the model's anyway.
    """
    if not model_path.is_file():
        raise ModelNotFoundError(f"model not found: {model_path}")
    if not data_yaml.is_file():
        raise ConfigError(f"dataset yaml not found: {data_yaml}")
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file; give a folder for summary.json and the plots")
    if not split_images(data_yaml, split):  # raises, naming the path, if the split is not there
        raise ConfigError(f"{data_yaml}: split {split!r} has no images")
    is_onnx = model_path.suffix == ".onnx"
    if is_onnx:
        fixed = check_detector_onnx(model_path, data_yaml)
        if imgsz is not None and imgsz != fixed:
            raise ConfigError(f"{model_path.name} takes {fixed} px input; --imgsz {imgsz} cannot apply to it")
        imgsz = fixed
    imgsz = imgsz or DEFAULT_PT_IMGSZ
    go_offline()
    from ultralytics import YOLO

    out_dir = out_dir.resolve()  # a relative project would land under ultralytics' own runs folder
    out_dir.mkdir(parents=True, exist_ok=True)
    model = YOLO(str(model_path), task="detect")
    if not is_onnx:
        _check_same_classes(model_path, [str(model.names[i]) for i in sorted(model.names)], data_yaml)
    metrics: Any = model.val(
        data=str(data_yaml),
        imgsz=imgsz,
        split=split,
        batch=1 if is_onnx else batch,  # exported models have a fixed batch of 1
        conf=conf,
        device="cpu",
        plots=True,
        project=str(out_dir.parent),
        name=out_dir.name,
        exist_ok=True,
        verbose=False,
    )
    names: dict[int, str] = metrics.names
    per_class: dict[str, ClassMetrics] = {}
    for i, class_index in enumerate(metrics.ap_class_index):
        p, r, ap50, ap = metrics.class_result(i)
        per_class[names[int(class_index)]] = ClassMetrics(
            precision=round(float(p), 4),
            recall=round(float(r), 4),
            ap50=round(float(ap50), 4),
            ap50_95=round(float(ap), 4),
            instances=int(metrics.nt_per_class[class_index]),
            images=int(metrics.nt_per_image[class_index]),
        )
    save_dir = Path(metrics.save_dir)
    if save_dir.resolve() != out_dir.resolve():  # ultralytics may pick its own folder; keep ours complete
        for png in save_dir.glob("*.png"):
            shutil.copy2(png, out_dir / png.name)
    summary = EvalSummary(
        model=str(model_path),
        data=str(data_yaml),
        split=split,
        eval_hash=split_hash(data_yaml, split),
        imgsz=imgsz,
        map50=round(float(metrics.box.map50), 4),
        map50_95=round(float(metrics.box.map), 4),
        precision=round(float(metrics.box.mp), 4),
        recall=round(float(metrics.box.mr), 4),
        per_class=per_class,
        ms_per_image=round(float(metrics.speed.get("inference", 0.0)), 2),
        plots=sorted(p.name for p in out_dir.glob("*.png")),
        model_sha256=sha256_file(model_path),
    )
    (out_dir / "summary.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return summary

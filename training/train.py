"""Train a detector with ultralytics, offline, from local weights only.

Ultralytics reaches for the network in a few places (weights by bare name, the AMP
check's reference model, the plot font, usage analytics). We make every one of them
impossible: weights must be an existing local file (a ``.pt`` checkpoint, e.g. from
:mod:`training.convert_yolov5`, or a model ``.yaml`` to start from scratch), the
process runs with ``YOLO_OFFLINE=1`` and analytics off, and AMP is off (CPU anyway).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streetwatch.errors import ConfigError, ModelNotFoundError


def go_offline() -> None:
    """Make ultralytics behave as if there were no network (call before importing it)."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_VERBOSE", "True")
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync"):
        SETTINGS.update({"sync": False})


def is_bundled_model_yaml(name: str) -> bool:
    """True if ultralytics ships this architecture yaml (e.g. ``yolov5nu.yaml``: train from scratch)."""
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(name)
    except (FileNotFoundError, OSError):
        return False
    return True


@dataclass
class TrainConfig:
    """Everything a training run needs; defaults are the first model's recipe."""

    data: Path
    weights: Path
    project: Path
    name: str = "train"
    epochs: int = 10
    imgsz: int = 416
    batch: int = 16
    workers: int = 2
    patience: int = 50
    close_mosaic: int = 3
    warmup_epochs: float = 1.0
    cache: str | bool = False
    seed: int = 0
    plots: bool = True
    fraction: float = 1.0
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        from training.data_hash import split_images

        if not self.data.is_file():
            raise ConfigError(f"dataset yaml not found: {self.data}")
        bundled = self.weights.suffix in {".yaml", ".yml"} and is_bundled_model_yaml(str(self.weights))
        if not self.weights.is_file() and not bundled:
            raise ModelNotFoundError(
                f"weights not found: {self.weights} (give a local .pt checkpoint or a model .yaml; "
                "nothing is downloaded)"
            )
        if self.weights.suffix not in {".pt", ".yaml", ".yml"}:
            raise ConfigError(f"weights must be a .pt checkpoint or a model .yaml, got {self.weights}")
        if self.epochs < 1 or self.imgsz < 32 or self.batch < 1:
            raise ConfigError(
                f"epochs, imgsz and batch must be positive (got {self.epochs}, {self.imgsz}, {self.batch})"
            )
        for split in ("train", "val"):
            if not split_images(self.data, split):  # raises, naming the path, when a split is missing
                raise ConfigError(f"{self.data}: split {split!r} has no images")


def run_dir(config: TrainConfig) -> Path:
    return config.project / config.name


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Run (or resume) training; returns the run folder with ``weights/best.pt`` and ``last.pt``."""
    go_offline()
    from ultralytics import YOLO

    if resume:
        last = run_dir(config) / "weights" / "last.pt"
        if not last.is_file():
            raise ModelNotFoundError(f"nothing to resume: {last} does not exist")
        _check_resumable(last)
        YOLO(str(last)).train(resume=True)
        return run_dir(config)
    config.check()
    _check_new_run(run_dir(config))
    try:
        model = YOLO(str(config.weights))
    except Exception as exc:  # torch/pickle raise many kinds on a file that is not a checkpoint
        raise ConfigError(f"{config.weights} is not an ultralytics checkpoint or model yaml: {exc}") from None
    model.train(
        data=str(config.data),
        epochs=config.epochs,
        imgsz=config.imgsz,
        batch=config.batch,
        workers=config.workers,
        device="cpu",
        # ultralytics files a relative project under its own settings folder, not the working
        # directory; an absolute path keeps the run where run_dir() and --resume look for it.
        project=str(config.project.resolve()),
        name=config.name,
        exist_ok=True,
        patience=config.patience,
        close_mosaic=config.close_mosaic,
        warmup_epochs=config.warmup_epochs,
        cache=config.cache,
        seed=config.seed,
        plots=config.plots,
        fraction=config.fraction,
        amp=False,
        verbose=True,
        **config.extra,
    )
    return run_dir(config)


def _check_resumable(last: Path) -> None:
    """A run that finished keeps no optimizer state; ultralytics would silently start a new
    training with its own defaults (COCO data, 100 epochs) instead of resuming it."""
    import torch

    try:
        checkpoint = torch.load(str(last), map_location="cpu", weights_only=False)
    except Exception as exc:  # a truncated or foreign file: torch raises many kinds
        raise ConfigError(f"{last} is not a readable training checkpoint: {exc}") from exc
    if (
        not isinstance(checkpoint, dict)
        or checkpoint.get("epoch", -1) == -1
        or not checkpoint.get("optimizer")
    ):
        best = last.with_name("best.pt")
        raise ConfigError(
            f"the run of {last} has finished; there is nothing to resume. To train further, start a "
            f"new run from its weights: --weights {best} --name <new name>"
        )


def _check_new_run(folder: Path) -> None:
    """Never train over an earlier run's weights: they may be all that is left of hours of CPU."""
    weights = folder / "weights"
    if weights.is_dir() and any(weights.glob("*.pt")):
        raise ConfigError(
            f"{folder} already holds the weights of an earlier run; choose another --name, "
            "or continue that run with --resume"
        )

"""Read a YAML file into a validated pydantic model, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from streetwatch.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)


def load_yaml_model(model: type[_M], file: Path, what: str, missing_hint: str = "") -> _M:
    """``model`` validated from ``file``; :class:`ConfigError` says which ``what`` failed and why."""
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{what} {file} not found{missing_hint}") from None
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {what} {file}: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{what} {file} is invalid:\n{exc}") from exc

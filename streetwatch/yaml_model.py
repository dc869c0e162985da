"""Read a YAML file into a validated pydantic model, with one error format for every role.

The box's config, the server's settings, the class taxonomy and the dataset catalog are all
read here, so a technician sees the same kind of message whichever file is wrong::

    server.yaml is not valid:
      mqtt.port: Input should be less than or equal to 65535
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from streetwatch.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)


def read_yaml_mapping(file: Path, what: str, missing_hint: str = "") -> dict[str, Any]:
    """The mapping at the top of ``file`` (an empty file is ``{}``); :class:`ConfigError` otherwise.

    ``what`` names the file for the reader ("server settings file"); ``missing_hint`` is added
    when the file does not exist (what to pass instead).
    """
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} {file} does not exist{missing_hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {what} {file}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {file} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {file} must hold a YAML mapping at the top level")
    return data


def invalid(
    where: str, exc: ValidationError, label: Callable[[tuple[int | str, ...]], str] | None = None
) -> ConfigError:
    """One line per wrong field, each with its dotted path (or what ``label`` calls its location).

    >>> from pydantic import BaseModel, Field
    >>> class Port(BaseModel):
    ...     port: int = Field(le=65535)
    >>> try:
    ...     Port.model_validate({"port": 70000})
    ... except ValidationError as exc:
    ...     print(invalid("server.yaml", exc))
    server.yaml is not valid:
      port: Input should be less than or equal to 65535
    """
    lines = [f"{where} is not valid:"]
    for err in exc.errors():
        loc = tuple(err["loc"])
        name = label(loc) if label else ".".join(str(p) for p in loc) or "(top level)"
        lines.append(f"  {name}: {err['msg']}")
    return ConfigError("\n".join(lines))


def load_yaml_model(model: type[_M], file: Path, what: str, missing_hint: str = "") -> _M:
    """``model`` validated from ``file``; :class:`ConfigError` says which ``what`` failed and why."""
    raw = read_yaml_mapping(file, what, missing_hint)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise invalid(f"{what} {file}", exc) from exc

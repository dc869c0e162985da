"""Where server settings come from when they are loaded, and what a wrong one is reported as.

Highest precedence first: values given in code (a command's options), ``STREETWATCH_*``
environment variables, the YAML settings file, the defaults. pydantic-settings merges the sources
in that order (``ServerSettings.settings_customise_sources``); this module holds the two that read
outside the program (:class:`EnvironmentSource`, :class:`YamlFileSource`) and turns a failed
validation into the project's one error format, each line naming the variable or the field of
the file the wrong value came from::

    server settings server.yaml is not valid:
      limits.batch_size: Input should be greater than or equal to 1
      STREETWATCH_MQTT__PORT (mqtt.port): Input should be a valid integer, unable to parse string as …

Settings built in code (``ServerSettings(...)``: tests, the demo, benchmarks) read neither: the
sources are only active inside :func:`reading`, so a developer's ``STREETWATCH_*`` variables never
leak into them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from streetwatch.errors import ConfigError
from streetwatch.yaml_model import invalid, read_yaml_mapping

ENV_PREFIX = "STREETWATCH_"
#: Joins a section and its field in a variable name: STREETWATCH_MQTT__HOST is ``mqtt.host``.
ENV_NESTED_DELIMITER = "__"

Loc = tuple[int | str, ...]


class EnvironmentSource(EnvSettingsSource):
    """``STREETWATCH_*`` variables of ``environ`` (the process environment, or a test's own dict).

    Names are matched without regard to case. Only variables naming a field are read: other
    ``STREETWATCH_*`` variables (``STREETWATCH_TEST_PG_URL``, ``STREETWATCH_HOME``) are left alone,
    while one naming an unknown field of a known section (``STREETWATCH_MQTT__HOTS``) is an error,
    as an unknown key in the file is.
    """

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        self.data: dict[str, Any] = {}
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(
            self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str
        )

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        # A section or list given whole (STREETWATCH_CONSOLE__TEAMS='["North", "South"]') is JSON;
        # pydantic-settings would only name the top-level field, so name the variable here.
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError as exc:
            names = [
                name.upper()
                for name, given in self.env_vars.items()
                if given == value and name.endswith(field_name.lower())
            ]
            raise ValueError(f"{' or '.join(names) or field_name} is not valid JSON: {exc}") from exc

    def __call__(self) -> dict[str, Any]:
        self.data = super().__call__()
        return self.data

    def variables_for(self, loc: Loc) -> str | None:
        """The variable(s) that set the value at ``loc`` (a field path), or None if none did."""
        path = _field_path(loc)
        if not path or not _holds(self.data, path):
            return None
        for end in range(len(path), 0, -1):  # a leaf variable, else a section given whole as JSON
            name = (self.env_prefix + ENV_NESTED_DELIMITER.join(path[:end])).lower()
            if name in self.env_vars:
                return name.upper()
        below = (self.env_prefix + ENV_NESTED_DELIMITER.join(path) + ENV_NESTED_DELIMITER).lower()
        return ", ".join(sorted(name.upper() for name in self.env_vars if name.startswith(below))) or None


class YamlFileSource(PydanticBaseSettingsSource):
    """The settings file, read by the project's one YAML loader (same messages as every config file)."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.data = {} if path is None else read_yaml_mapping(path, "server settings file")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self.data


class Reading:
    """One load of the settings: its file, its environment and, once made, their sources."""

    def __init__(self, path: Path | None, environ: Mapping[str, str]) -> None:
        self.path = path
        self.environ = environ
        self.environment: EnvironmentSource | None = None
        self.file: YamlFileSource | None = None

    def sources(self, settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
        self.environment = EnvironmentSource(settings_cls, self.environ)
        self.file = YamlFileSource(settings_cls, self.path)
        return self.environment, self.file

    def invalid(self, exc: ValidationError) -> ConfigError:
        """One line per wrong value, naming its variable when the environment set it."""
        labels: dict[Loc, str] = {}
        for error in exc.errors():
            loc = tuple(error["loc"])
            field = ".".join(str(part) for part in loc) or "(top level)"
            variables = self.environment.variables_for(loc) if self.environment else None
            labels[loc] = field if variables is None else f"{variables} ({field})"
        in_file = self.file is not None and any(_holds(self.file.data, _field_path(loc)) for loc in labels)
        where = f"server settings {self.path}" if in_file else "server settings"
        return invalid(where, exc, label=labels.__getitem__)

    def unreadable(self, exc: SettingsError) -> ConfigError:
        """A variable pydantic-settings could not even parse (a section given as broken JSON)."""
        return ConfigError(f"server settings is not valid:\n  {exc.__cause__ or exc}")


def variables_in_use(settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> list[str]:
    """The variables of ``environ`` that set a setting (check-config names them)."""
    source = EnvironmentSource(settings_cls, environ)
    source()
    return sorted({name for path in _leaf_paths(source.data) if (name := source.variables_for(path))})


_READING: ContextVar[Reading | None] = ContextVar("server_settings_reading", default=None)


def active_sources(settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
    """The environment and the file while :func:`reading`; none for settings built in code."""
    reading_now = _READING.get()
    return () if reading_now is None else reading_now.sources(settings_cls)


@contextmanager
def reading(path: Path | None, environ: Mapping[str, str]) -> Iterator[Reading]:
    """Make the environment and the file sources of settings built inside the block."""
    current = Reading(path, environ)
    token = _READING.set(current)
    try:
        yield current
    finally:
        _READING.reset(token)


def _holds(data: Mapping[str, Any], path: list[str]) -> bool:
    node: Any = data
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return False
        node = node[key]
    return True


def _field_path(loc: Loc) -> list[str]:
    """The keys of ``loc`` that name fields or dict entries (not pydantic's "[key]" markers)."""
    return [part for part in loc if isinstance(part, str) and not part.startswith("[")]


def _leaf_paths(data: Mapping[str, Any], prefix: Loc = ()) -> Iterator[Loc]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)

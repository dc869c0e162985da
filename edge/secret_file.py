"""Secrets kept out of the box's config, each on the first line of a file of its own (the MQTT
password, the HTTP token): read them the same way, and say which file is wrong and how."""

from __future__ import annotations

from pathlib import Path

from streetwatch.errors import ConfigError


def read_secret(path: str, what: str) -> str:
    """The first line of ``path``, stripped; ConfigError naming ``what`` if unreadable or empty."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the {what} file {path}: {exc}") from exc
    if not lines or not lines[0].strip():
        raise ConfigError(f"the {what} file {path} is empty; put the {what.split()[-1]} on its first line")
    return lines[0].strip()

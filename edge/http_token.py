"""The box's HTTP token (``Authorization: Bearer``) for the server's API, read from its file: the
one file downloads (``updates.http_token_file``) and refusal reports (``sink.refusal_report``) use."""

from __future__ import annotations

from pathlib import Path

from streetwatch.errors import ConfigError


def read_token(path: str | None) -> str | None:
    """The token on the file's first line; None without a file; ConfigError if unreadable or empty."""
    if path is None:
        return None
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the box's HTTP token file {path}: {exc}") from exc
    if not lines or not lines[0].strip():
        raise ConfigError(f"the HTTP token file {path} is empty")
    return lines[0].strip()

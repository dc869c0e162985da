"""The box's HTTP token (``Authorization: Bearer``) for the server's API, read from its file: the
one file downloads (``updates.http_token_file``) and refusal reports (``sink.refusal_report``) use."""

from __future__ import annotations

from edge.secret_file import read_secret


def read_token(path: str | None) -> str | None:
    """The token on the file's first line; None without a file; ConfigError if unreadable or empty."""
    return None if path is None else read_secret(path, "box's HTTP token")

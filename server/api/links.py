"""Absolute URLs the API hands out (evidence images), built from the request's base URL."""

from __future__ import annotations

from fastapi import Request

#: Every REST route lives under this prefix.
API_PREFIX = "/api/v1"


class EvidenceLinks:
    """Makes ``<base>/api/v1/evidence/<sha256>`` URLs for one request (behind a proxy too)."""

    def __init__(self, request: Request) -> None:
        self._prefix = str(request.base_url).rstrip("/") + API_PREFIX + "/evidence/"

    def url(self, sha256: str) -> str:
        return self._prefix + sha256

    def maybe(self, sha256: str | None) -> str | None:
        return self.url(sha256) if sha256 else None

"""What every HTTP request meets: a body size limit, safe headers, refusal counts, no secrets in logs.

* :class:`RequestGuard` (ASGI middleware) refuses a NUL character anywhere in the path or
  query (422), and a body larger than ``api.max_body_bytes`` (``api.max_upload_bytes`` on the
  few routes that take files, ``UPLOAD_PATHS``) with 413: at once when ``Content-Length`` says
  so (nothing of the body is read), and for a body without a length (chunked) as soon as the
  bytes received pass the limit, so a huge body is never held in memory. It also adds
  ``X-Content-Type-Options: nosniff`` to every answer, so no browser runs an answer as anything
  but its declared type.
* :class:`RefusalCounter` counts refused requests by reason for ``/metrics``
  (``streetwatch_api_refusals_total{reason}``), per API process.
* :class:`SecretRedactor` is a logging filter for uvicorn's access log: GeoReport clients send
  their token as ``?api_key=``, and a token in a log file is a token anyone with the log holds.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections import Counter

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.links import API_PREFIX

#: Reasons counted in ``streetwatch_api_refusals_total``; always shown, 0 included.
REFUSAL_REASONS = (
    "body_too_large",
    "login_failed",
    "login_throttled",
    "unauthorized",
    "forbidden",
    "invalid_request",
)


class RefusalCounter:
    """Refused requests by reason, thread-safe (sync routes run in a thread pool)."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def count(self, reason: str) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            counts = dict(self._counts)
        return {reason: counts.get(reason, 0) for reason in REFUSAL_REASONS} | counts


#: POST routes whose bodies carry files (a permit list with its photos): api.max_upload_bytes.
UPLOAD_PATHS = frozenset({f"{API_PREFIX}/signs/import"})


def too_large_message(limit: int, upload: bool = False) -> str:
    if upload:
        return f"request body larger than {limit} bytes (api.max_upload_bytes)"
    return f"request body larger than {limit} bytes; this API takes small JSON bodies only"


class RequestGuard:
    """ASGI middleware: body size limit and ``nosniff`` on every answer (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        refusals: RefusalCounter,
        open311_prefix: str,
        max_upload_bytes: int | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes if max_upload_bytes is not None else max_body_bytes
        self.refusals = refusals
        self.open311_prefix = open311_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_safely(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        if _has_nul(scope):
            self.refusals.count("invalid_request")
            await self._refuse(scope, send_safely, 422, NUL_MESSAGE)
            return
        upload = scope.get("method") == "POST" and scope.get("path") in UPLOAD_PATHS
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            self.refusals.count("body_too_large")
            await self._refuse(scope, send_safely, 413, too_large_message(limit, upload))
            return  # the body is never read

        received = 0

        async def receive_limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    self.refusals.count("body_too_large")
                    # FastAPI passes an HTTPException raised while reading the body through to the
                    # app's error handler: the client gets the same 413 as with a Content-Length.
                    raise HTTPException(
                        413, detail=too_large_message(limit, upload), headers={"Connection": "close"}
                    )
            return message

        await self.app(scope, receive_limited, send_safely)

    async def _refuse(self, scope: Scope, send: Send, code: int, detail: str) -> None:
        body: object = (
            [{"code": code, "description": detail}]
            if str(scope.get("path", "")).startswith(self.open311_prefix)
            else {"detail": detail}
        )
        data = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    (b"connection", b"close"),  # the unread body must not be taken for a next request
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})


NUL_MESSAGE = "a path or query value contains a NUL character (%00); no valid value does"


def _has_nul(scope: Scope) -> bool:
    """A NUL in the path or the query: PostgreSQL cannot even compare such text, and no id,
    name or filter of this API holds one."""
    raw = bytes(scope.get("raw_path") or b"") + b"?" + bytes(scope.get("query_string") or b"")
    return "\x00" in str(scope.get("path", "")) or b"%00" in raw.lower() or b"\x00" in raw


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            # A length that is no number is refused by the server before the app sees it; an
            # absurd one (more digits than any limit) counts as too large.
            return int(text) if text.isdigit() and len(text) < 19 else 2**63
    return None


_SECRET_QUERY = re.compile(r"(?i)([?&](?:api_key|access_token|token)=)[^&\s\"]*")


def redact_secrets(text: str) -> str:
    """``text`` with the values of ``api_key=``, ``access_token=`` and ``token=`` query parameters hidden."""
    return _SECRET_QUERY.sub(r"\1[redacted]", text)


class SecretRedactor(logging.Filter):
    """Rewrites uvicorn access-log records (args: client, method, path with query, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_secrets(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_secrets(record.msg)
        return True


def install_access_log_redaction(logger_name: str = "uvicorn.access") -> None:
    """Add :class:`SecretRedactor` to the access logger once (apps made in one process share it)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, SecretRedactor) for f in logger.filters):
        logger.addFilter(SecretRedactor())

"""Resumable, size-capped downloads of release artifacts (standard library only: urllib).

The box downloads into ``<file>.part`` and asks for the rest with an HTTP ``Range``
header after a cut, so a van driving out of coverage resumes where it stopped instead of
starting over. The download never takes more than the signed size: a server (or a man in
the middle) that sends more is cut off. What the bytes are is checked afterwards
(:mod:`edge.updates.artifact`); this module only moves them.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from streetwatch.errors import StreetWatchError

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
#: Seconds between attempts (doubling): short, the link is usually back within seconds or not at all.
RETRY_WAIT_S = 0.5


class DownloadError(StreetWatchError):
    """The artifact could not be fetched (the message says how far it got and why)."""


def download(
    url: str,
    part: Path,
    *,
    size: int,
    token: str | None,
    timeout_s: float,
    attempts: int,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Fetch ``url`` into ``part`` (resuming what is already there) until it holds ``size`` bytes.

    Network failures and server errors (5xx) are retried ``attempts`` times in all, each
    request resuming with ``Range: bytes=<have>-``. Refusals that a retry cannot change
    (401, 403, 404, ...) fail at once. ``on_progress(bytes_so_far)`` is called as data
    arrives. Returns ``part`` complete; raises :class:`DownloadError`.
    """
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"cannot download {url!r}: only http and https URLs are fetched")
    part.parent.mkdir(parents=True, exist_ok=True)
    last_error = "no attempt made"
    for attempt in range(attempts):
        have = part.stat().st_size if part.exists() else 0
        if have > size:  # an earlier artifact under the same name: start over
            part.unlink()
            have = 0
        if have == size:
            return part
        try:
            _fetch(url, part, have=have, size=size, token=token, timeout_s=timeout_s, on_progress=on_progress)
        except _Permanent as exc:
            raise DownloadError(str(exc)) from exc
        except (OSError, http.client.HTTPException, _Retry) as exc:
            got = part.stat().st_size if part.exists() else 0
            where = f" after {got} of {size} bytes" if not isinstance(exc, _Retry) else ""
            last_error = f"{_describe(exc)}{where}"
            log.warning("download of %s: attempt %d/%d failed: %s", url, attempt + 1, attempts, last_error)
            if attempt + 1 < attempts:
                time.sleep(RETRY_WAIT_S * (2**attempt))
            continue
        if part.stat().st_size == size:
            return part
        last_error = f"the server ended the transfer at {part.stat().st_size} of {size} bytes"
    raise DownloadError(f"download of {url} failed {attempts} times; the last time: {last_error}")


class _Permanent(Exception):
    """A refusal that retrying cannot change."""


class _Retry(Exception):
    """A failure worth another attempt."""


def _fetch(
    url: str,
    part: Path,
    *,
    have: int,
    size: int,
    token: str | None,
    timeout_s: float,
    on_progress: Callable[[int], None] | None,
) -> None:
    request = urllib.request.Request(url, method="GET")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # the scheme was checked above
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            part.unlink()  # the server's file is not the one we started: begin again next attempt
            raise _Retry(f"the server refused the resume range (HTTP 416) at {have} bytes") from exc
        if exc.code >= 500 or exc.code in (408, 429):
            raise _Retry(f"the server answered HTTP {exc.code}") from exc
        raise _Permanent(f"the server refused the download of {url}: HTTP {exc.code} {exc.reason}") from exc
    except ValueError as exc:  # not a URL urllib can open
        raise _Permanent(f"cannot download {url!r}: {exc}") from exc
    with response:
        status = response.status
        if have and status == 200:
            # The server ignored the range and sends everything: keep nothing of the old part.
            have = 0
            mode = "wb"
        elif status == 206:
            start = _range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise _Retry(f"the server sent bytes from {start}, asked for {have}")
            mode = "ab"
        elif status == 200:
            mode = "wb"
        else:
            raise _Permanent(f"the server answered HTTP {status} to the download of {url}")
        got = have
        with part.open(mode) as out:
            while True:
                chunk = response.read(min(CHUNK, size - got + 1))
                if not chunk:
                    break
                if got + len(chunk) > size:
                    out.write(chunk[: size - got])
                    out.flush()
                    raise _Permanent(f"the server sent more than the signed size of {size} bytes")
                out.write(chunk)
                got += len(chunk)
                if on_progress is not None:
                    on_progress(got)
            out.flush()
            os.fsync(out.fileno())
        if got < size:
            raise _Retry(f"the connection ended at {got} of {size} bytes")


def _range_start(content_range: str) -> int | None:
    # "bytes 100-199/200"
    try:
        unit, rest = content_range.split(" ", 1)
        return int(rest.split("-", 1)[0]) if unit == "bytes" else None
    except ValueError:
        return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, http.client.IncompleteRead):
        return "the connection was cut"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "the server stopped sending (timeout)"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot reach the server: {exc.reason}"
    return str(exc) or type(exc).__name__

"""Download a catalog dataset file, only when a user asks for it, and check its SHA-256.

The file is streamed to ``<name>.part`` while it is hashed, and renamed only when the hash
matches (or, for an entry not pinned yet, after printing the hash to pin). A wrong hash removes
the partial file and raises; an unreachable host raises with a message that says so and where
to download the file by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from streetwatch.errors import DatasetError
from training.datasets.catalog import Access, CatalogEntry

_CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchResult:
    path: Path
    sha256: str
    pinned: bool  # False: the catalog has no hash yet; ``sha256`` is the one to pin
    size_bytes: int


class ManualDownloadRequired(DatasetError):
    """The dataset needs a login, an agreement or a manual step; the message says what to do."""


def manual_instructions(entry: CatalogEntry) -> str:
    why = {
        Access.open: "has no direct download file",
        Access.login: "needs an account to download",
        Access.restricted: "is only available to some users",
    }[entry.access]
    return (
        f"{entry.name} ({entry.title}) {why}; nothing was downloaded.\n"
        f"Where: {entry.url}\nLicence: {entry.licence}\n{entry.instructions or ''}".rstrip()
    )


def fetch_dataset(
    entry: CatalogEntry,
    dest: Path,
    *,
    timeout_s: float = 30.0,
    progress: Callable[[int, int | None], None] | None = None,
) -> FetchResult:
    """Download ``entry``'s file into ``dest``; :class:`ManualDownloadRequired` if there is none."""
    download = entry.download
    if download is None:
        raise ManualDownloadRequired(manual_instructions(entry))
    if dest.exists() and not dest.is_dir():
        raise DatasetError(f"--dest {dest} is a file; give a folder to save into")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        return _download(entry, dest, timeout_s, progress)
    except DatasetError:
        if created:  # leave no empty folder behind a failed fetch
            with contextlib.suppress(OSError):
                dest.rmdir()
        raise


def _download(
    entry: CatalogEntry,
    dest: Path,
    timeout_s: float,
    progress: Callable[[int, int | None], None] | None,
) -> FetchResult:
    download = entry.download
    assert download is not None  # checked by fetch_dataset
    target = dest / download.file
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(download.url, timeout=timeout_s) as response, partial.open("wb") as out:
            total = response.length
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
                if progress is not None:
                    progress(size, total)
    except urllib.error.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise DatasetError(
            f"cannot download {entry.name}: {download.url} answered HTTP {exc.code} {exc.reason}; "
            f"the catalog URL may be out of date: see {entry.url}"
        ) from None
    except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
        partial.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DatasetError(
            f"cannot download {entry.name} from {download.url}: {reason}. This machine looks offline or "
            f"the host is unreachable; download the file by hand from {entry.url} and put it at {target}"
        ) from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"cannot write {partial}: {exc}") from exc
    actual = digest.hexdigest()
    if download.sha256 is not None and actual != download.sha256:
        partial.unlink(missing_ok=True)
        raise DatasetError(
            f"{entry.name}: SHA-256 of the downloaded file is {actual}, "
            f"the catalog expects {download.sha256}; "
            "the file was removed (a changed or tampered upstream file, or a broken transfer)"
        )
    partial.replace(target)
    return FetchResult(path=target, sha256=actual, pinned=download.sha256 is not None, size_bytes=size)

"""Fetch a signed release artifact and prove it is the one the fleet released.

Order matters: the signature covers the command's fields (kind, name, version, size,
SHA-256), so it is checked *before* anything is downloaded (an unsigned or foreign
release costs no bandwidth); the bytes are then checked against the signed size and
hash before anything reads them as a model or a configuration.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.config import UpdatesConfig
from edge.http_token import read_token
from edge.updates.download import DownloadError, download
from streetwatch.errors import ConfigError, PayloadError, StreetWatchError
from streetwatch.file_hash import sha256_file
from streetwatch.messages import UpdateConfigCommand, UpdateModelCommand
from streetwatch.release_signing import Release, ReleaseKind, verify
from streetwatch.releases import load_public_key

log = logging.getLogger(__name__)

#: Seconds between two download progress reports (plus one per quarter of the file).
PROGRESS_EVERY_S = 2.0
#: Free disk an update must leave: events and evidence keep priority over a new model.
RESERVE_BYTES = 64 * 1024 * 1024


class UpdateRefused(StreetWatchError):
    """An update step failed; ``step`` names it (download, verify, probe, swap, probation, apply)."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(reason)
        self.step = step
        self.reason = reason


def load_release_key(path: str) -> Ed25519PublicKey:
    """The fleet's release public key (PEM, as ``streetwatch fleet keygen`` writes it)."""
    return load_public_key(Path(path))


def release_of(kind: ReleaseKind, command: UpdateModelCommand | UpdateConfigCommand) -> Release:
    return Release(
        kind=kind, name=command.name, version=command.version, size=command.size, sha256=command.sha256
    )


def fetch_verified(
    kind: ReleaseKind,
    command: UpdateModelCommand | UpdateConfigCommand,
    config: UpdatesConfig,
    key: Ed25519PublicKey,
    progress: Callable[[str, float], None],
) -> Path:
    """Check the signature, download with resume into the staging folder, check size and hash.

    Returns the staged file (complete and proven); raises :class:`UpdateRefused`.
    """
    release = release_of(kind, command)
    try:
        verify(key, release, command.signature)
    except PayloadError as exc:
        raise UpdateRefused("verify", f"{exc}; nothing was downloaded") from exc
    if command.size > config.max_download_bytes:
        raise UpdateRefused(
            "verify",
            f"{kind} {command.name} {command.version} is {command.size} bytes; this box takes at most "
            f"{config.max_download_bytes} (updates.max_download_bytes)",
        )
    # One staging name per signed artifact: a resumed download continues the same bytes only.
    staging = Path(config.staging_dir)
    part = staging / f"{kind}-{_safe(command.name)}-{command.sha256[:16]}.part"
    for superseded in staging.glob(f"{kind}-{_safe(command.name)}-*.part"):
        if superseded != part:  # a cut download of another release of the same artifact
            superseded.unlink(missing_ok=True)
    staging.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    free = shutil.disk_usage(staging).free
    if free - (command.size - have) < RESERVE_BYTES:
        raise UpdateRefused(
            "download",
            f"not enough disk for {kind} {command.name} {command.version}: {command.size - have} bytes "
            f"to fetch, {free} free, {RESERVE_BYTES} kept for the outbox and evidence",
        )
    last = [0.0, -1]  # time and quarter of the last report

    def on_bytes(got: int) -> None:
        now, quarter = time.monotonic(), 4 * got // command.size
        if now - last[0] >= PROGRESS_EVERY_S or quarter > last[1]:
            last[0], last[1] = now, quarter
            progress("download", got / command.size)

    try:
        download(
            command.url,
            part,
            size=command.size,
            token=read_token(config.http_token_file),
            timeout_s=config.download_timeout_s,
            attempts=config.download_attempts,
            on_progress=on_bytes,
        )
    except (DownloadError, ConfigError) as exc:
        raise UpdateRefused("download", f"{exc} (the part kept on the box resumes next time)") from exc
    digest = sha256_file(part)
    if digest != command.sha256:
        part.unlink(missing_ok=True)  # wrong bytes: never resume from them
        raise UpdateRefused(
            "verify",
            f"the downloaded {kind} hashes to {digest}, the signed release says {command.sha256}; "
            "the file was deleted",
        )
    progress("verify", 1.0)
    return part


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:64]

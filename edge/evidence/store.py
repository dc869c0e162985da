"""Content-addressed evidence files on the box's disk, with a total-size cap.

A file is named by the SHA-256 of its bytes (``ab/abcdef….jpg``), so writing
the same picture twice costs nothing and the name is the reference events
carry. Beyond ``max_total_mb`` the oldest files go first: recent evidence
matters most to a dispatcher, and the box must never fill its disk.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import threading
from pathlib import Path

from streetwatch.errors import StorageError

log = logging.getLogger(__name__)


class EvidenceStore:
    """Writes JPEG bytes under ``directory`` by their SHA-256 and keeps the total under a cap."""

    def __init__(self, directory: str | Path, max_total_bytes: int) -> None:
        if max_total_bytes <= 0:
            raise ValueError(f"max_total_bytes must be positive, got {max_total_bytes}")
        self.directory = Path(directory)
        self.max_total_bytes = max_total_bytes
        self._lock = threading.Lock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the evidence folder {self.directory}: {exc}") from exc
        # (mtime, path, size) of what is on disk, oldest first.
        self._files: list[tuple[float, Path, int]] = sorted(
            (p.stat().st_mtime, p, p.stat().st_size) for p in self.directory.glob("*/*.jpg")
        )
        self._total = sum(size for _, _, size in self._files)

    @property
    def total_bytes(self) -> int:
        return self._total

    def path_for(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / f"{sha256}.jpg"

    def put(self, data: bytes) -> str:
        """Store ``data``; return its SHA-256 hex. Raise :class:`StorageError` when it cannot be written."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        with self._lock:
            if target.exists():
                return digest
            self._make_room(len(data))
            self._write(target, data)
            self._files.append((target.stat().st_mtime, target, len(data)))
            self._total += len(data)
        return digest

    def _write(self, target: Path, data: bytes) -> None:
        temp = target.with_suffix(".tmp")
        try:
            target.parent.mkdir(exist_ok=True)
            with open(temp, "wb") as fh:
                fh.write(data)
            os.replace(temp, target)  # readers never see half a file
        except OSError as exc:
            temp.unlink(missing_ok=True)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageError(
                    f"the disk holding {self.directory} is full; evidence is dropped until space is freed "
                    "(lower evidence.max_total_mb or free space)"
                ) from exc
            raise StorageError(f"cannot write evidence file {target}: {exc}") from exc

    def _make_room(self, incoming: int) -> None:
        while self._files and self._total + incoming > self.max_total_bytes:
            _, oldest, size = self._files.pop(0)
            try:
                oldest.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not delete old evidence %s: %s", oldest, exc)
            self._total -= size

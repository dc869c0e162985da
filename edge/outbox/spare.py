"""Two small files beside the outbox that keep working when its disk is full.

* ``<outbox>.reserve``: space set aside while the disk has room (``reserve_bytes``).
  When a write fails for lack of space, the outbox deletes it: the freed blocks let
  SQLite fold its write-ahead log into the database and commit the eviction of old
  images, which a completely full disk would refuse. It is set aside again once the
  disk has room.
* ``<outbox>.losses``: what was lost because the disk refused a write, as a JSON object
  in a file of fixed size, overwritten in place. Overwriting blocks a file already owns
  needs no free space, so the count survives a restart even when the database itself
  cannot take a single write.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: Size of the losses file; a handful of counters fit many times over.
LOSSES_BYTES = 4096


class Reserve:
    """Disk space held back for the moment the disk fills up."""

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size

    @property
    def held(self) -> bool:
        return self.size > 0 and self.path.exists()

    def hold(self) -> bool:
        """Set the space aside if it is not already; False when the disk has no room for it."""
        if self.size <= 0 or self.path.exists():
            return self.held
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.size)  # real blocks, not a sparse file
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            self.path.unlink(missing_ok=True)
            log.debug("outbox reserve %s not set aside: %s", self.path, exc)
            return False
        return True

    def release(self) -> bool:
        """Give the space back to the disk; True if there was any to give."""
        if not self.held:
            return False
        try:
            self.path.unlink()
        except OSError as exc:
            log.error("cannot release the outbox reserve %s: %s", self.path, exc)
            return False
        return True


class LossLedger:
    """Counts of messages lost to storage errors, persisted without needing free space."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.counts: dict[str, int] = {}
        self._fd: int | None = None
        self._open()

    def _open(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            log.error("cannot open the outbox loss ledger %s: %s", self.path, exc)
            return
        try:
            raw = os.pread(fd, LOSSES_BYTES, 0).rstrip(b"\0 \n")
            if raw:
                loaded = json.loads(raw)
                self.counts = {str(k): int(v) for k, v in loaded.items()}
            if os.fstat(fd).st_size < LOSSES_BYTES:
                os.posix_fallocate(fd, 0, LOSSES_BYTES)
        except (OSError, ValueError, AttributeError) as exc:
            log.error("outbox loss ledger %s unreadable or not allocated (%s); counting on", self.path, exc)
        self._fd = fd

    def add(self, name: str, count: int = 1) -> None:
        """Count a loss and write it through to disk (in place, fsynced)."""
        self.counts[name] = self.counts.get(name, 0) + count
        if self._fd is None:
            self._open()
        if self._fd is None:
            return
        data = json.dumps(self.counts, sort_keys=True).encode()
        try:
            os.pwrite(self._fd, data.ljust(LOSSES_BYTES, b" "), 0)
            os.fsync(self._fd)
        except OSError as exc:
            log.error("cannot persist the outbox loss count in %s: %s", self.path, exc)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

"""The JSON-lines event sink: one ``ViolationEvent`` JSON per line, appended to a file."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from edge.interfaces import Evidence
from streetwatch.errors import StorageError
from streetwatch.events import ViolationEvent


class JsonlSink:
    """Appends each event as one line; evidence pictures stay in the evidence store (the event names them).

    Lines are flushed one by one, so a reader (``tail -f``, a test) sees every
    event as soon as it is emitted and a crash loses at most a partial last line.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open for the sink's life
        except OSError as exc:
            raise StorageError(f"cannot open the event file {self.path}: {exc}") from exc
        self.emitted = 0

    def emit(self, event: ViolationEvent, evidence: Evidence | None) -> None:
        line = event.to_json() + b"\n"
        with self._lock:
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as exc:
                raise StorageError(f"cannot append to the event file {self.path}: {exc}") from exc
            self.emitted += 1

    def close(self) -> None:
        with self._lock:
            if self._file.closed:
                return
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError:
                pass  # closing must not fail; the lines were flushed already
            finally:
                self._file.close()

"""What is installed on the box, kept in one small JSON file written atomically.

``<models_dir>/installed.json``::

    {"format": 1,
     "models": {"<configured model path>": {
         "current":  {"name", "version", "path", "sha256", "command_id"} | null,   # null: the configured file
         "previous": {...} | null,
         "pending":  {...} | null}},                                             # swapped in, on probation
     "unreported": [{"command_id", "type", "reason"}]}

A model is written as ``pending`` *before* it is swapped in and becomes ``current`` only
when its probation passes. A box that starts and finds a ``pending`` entry crashed (or
was killed, or hung until the watchdog restarted it) during the probation: the pending
model is dropped, the box runs ``current``, and the failure waits in ``unreported`` until
the box can say so to the server. Each write goes to a temporary file that is flushed,
fsynced and renamed over the old one, so a power cut leaves the old state or the new one,
never half of either.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from streetwatch.errors import ConfigError

log = logging.getLogger(__name__)

STATE_FILE = "installed.json"
FORMAT = 1


@dataclass(frozen=True)
class Installed:
    """One installed artifact version."""

    name: str
    version: str
    path: str
    sha256: str
    command_id: str


@dataclass
class Slot:
    """The install history of one configured detector (keyed by its configured model path)."""

    current: Installed | None = None
    previous: Installed | None = None
    pending: Installed | None = None


@dataclass
class InstallState:
    path: Path
    models: dict[str, Slot] = field(default_factory=dict)
    unreported: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def load(cls, directory: str | Path) -> InstallState:
        path = Path(directory) / STATE_FILE
        if not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text())
            models = {key: _slot(value) for key, value in raw.get("models", {}).items()}
            unreported = [dict(r) for r in raw.get("unreported", [])]
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            # The file is only ever replaced whole; if it is unreadable anyway, run what is configured.
            log.error("install state %s is unreadable (%s); running the configured models", path, exc)
            return cls(path)
        return cls(path, models, unreported)

    def slot(self, configured: str) -> Slot:
        return self.models.setdefault(configured, Slot())

    def save(self) -> None:
        body = {
            "format": FORMAT,
            "models": {
                key: {name: asdict(v) if v is not None else None for name, v in asdict_slot(slot).items()}
                for key, slot in self.models.items()
            },
            "unreported": self.unreported,
        }
        write_atomically(self.path, json.dumps(body, indent=1, sort_keys=True).encode())


def asdict_slot(slot: Slot) -> dict[str, Installed | None]:
    return {"current": slot.current, "previous": slot.previous, "pending": slot.pending}


def _installed(value: Any) -> Installed | None:
    return None if value is None else Installed(**value)


def _slot(value: Any) -> Slot:
    return Slot(
        _installed(value.get("current")), _installed(value.get("previous")), _installed(value.get("pending"))
    )


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a reader (or a restart after a power cut) sees old or new, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a power cut
        finally:
            os.close(directory)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc

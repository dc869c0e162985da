"""A small model registry with a signed release, for fleet tests (no real model needed: boxes,
not the server, load the file)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from streetwatch.releases import SignedRelease, generate_keypair, sign_model

MODEL = "streetwatch-det"


def write_registry(folder: Path, versions: dict[str, bytes]) -> Path:
    """``registry.json`` in ``folder`` listing ``versions`` (version -> file bytes), one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for version, data in versions.items():
        name = f"det-{version}.onnx"
        (folder / name).write_bytes(data)
        entries.append(
            {
                "name": MODEL,
                "version": version,
                "file": name,
                "sha256": hashlib.sha256(data).hexdigest(),
                "data_hash": "",
                "eval_hash": "",
                "metrics": {},
            }
        )
    path = folder / "registry.json"
    path.write_text(json.dumps({"format": 1, "current": {}, "models": entries}))
    return path


def signed_registry(
    tmp_path: Path, version: str = "2.0.0", size: int = 300_000
) -> tuple[Path, Path, SignedRelease]:
    """A registry with one version of ``size`` bytes signed by a fresh key: registry, public key, release."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    registry = write_registry(tmp_path / "models", {version: data})
    private, public = generate_keypair(tmp_path / "keys")
    return registry, public, sign_model(registry, MODEL, version, private)

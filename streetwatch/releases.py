"""Signed releases on disk: the fleet's key pair, the model registry's files, and who signed what.

A *release folder* holds artifacts and a ``signatures.json`` listing, per artifact, the fields
:mod:`streetwatch.release_signing` covers, the signature, and the file (relative to the
folder). Models: the folder of ``models/registry.json`` (``streetwatch model sign``); the
registry stays the training side's file and is only read here, so the server can serve models
without importing ``training``. Configurations: a folder of their own, filled by
``streetwatch fleet sign-config`` (it copies the file in, so a later edit of the original
cannot change what was signed).

    private, public = generate_keypair(Path("keys"))       # streetwatch fleet keygen
    sign_model(Path("models/registry.json"), "streetwatch-det", "1.2.0", private)
    signed = find_release(Path("models"), "model", "streetwatch-det", "1.2.0")
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from streetwatch.errors import ConfigError
from streetwatch.file_hash import sha256_file
from streetwatch.release_signing import Release, ReleaseKind, sign, verify

#: The list of signed artifacts in a release folder.
SIGNATURES_FILE = "signatures.json"
SIGNATURES_FORMAT = 1
PRIVATE_KEY_FILE = "fleet-release.key"
PUBLIC_KEY_FILE = "fleet-release.pub"


@dataclass(frozen=True)
class SignedRelease:
    """An artifact as signed: the covered fields, the signature and where its bytes are."""

    release: Release
    signature: str
    path: Path


@dataclass(frozen=True)
class RegistryModel:
    """What the server needs of a registry entry: the file and the hash it must have."""

    name: str
    version: str
    path: Path
    sha256: str


# -- keys --------------------------------------------------------------------------------------


def generate_keypair(out_dir: Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into ``out_dir``; refuse to replace an existing one.

    The private key (PKCS#8 PEM) is created readable by its owner only; it must never reach a
    box. The public key (PEM) goes on every box.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path, public_path = out_dir / PRIVATE_KEY_FILE, out_dir / PUBLIC_KEY_FILE
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(
                f"{path} exists already; a new key would orphan every signature made with it "
                "(move it away first if you really mean to replace the fleet's release key)"
            )
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # O_EXCL: two keygens racing cannot both believe they wrote the key.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(private_pem)
    private_path.chmod(0o600)
    public_path.write_bytes(public_pem)
    return private_path, public_path


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(_read_key(path), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key (make one with: streetwatch fleet keygen)")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(_read_key(path))
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


def _read_key(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read key file {path}: {exc}") from exc
    if b"-----BEGIN" not in data:
        raise ConfigError(f"{path} is not a PEM key file")
    return data


# -- the model registry (read only) -------------------------------------------------------------


def registry_models(registry_path: Path) -> list[RegistryModel]:
    """The entries of ``models/registry.json``; paths resolved against its folder."""
    try:
        data = json.loads(registry_path.read_text())
        entries = data["models"]
        return [
            RegistryModel(
                name=str(e["name"]),
                version=str(e["version"]),
                path=registry_path.parent / str(e["file"]),
                sha256=str(e["sha256"]),
            )
            for e in entries
        ]
    except OSError as exc:
        raise ConfigError(f"cannot read the model registry {registry_path}: {exc}") from exc
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{registry_path} is not a model registry: {exc!r}") from exc


def registry_model(registry_path: Path, name: str, version: str) -> RegistryModel:
    models = registry_models(registry_path)
    for model in models:
        if model.name == name and model.version == version:
            return model
    known = ", ".join(sorted(f"{m.name} {m.version}" for m in models)) or "none"
    raise ConfigError(f"{registry_path} has no model {name} {version}; registered: {known}")


# -- signing ----------------------------------------------------------------------------------


def sign_model(registry_path: Path, name: str, version: str, key_path: Path) -> SignedRelease:
    """Sign a registered model's file and record the signature beside the registry.

    The file must still hold the registered bytes: a version whose file was overwritten by a
    later export cannot be signed (nor shipped) any more.
    """
    model = registry_model(registry_path, name, version)
    if not model.path.is_file():
        raise ConfigError(f"the file of {name} {version} is missing: {model.path}")
    digest = sha256_file(model.path)
    if digest != model.sha256:
        raise ConfigError(
            f"{model.path} no longer holds {name} {version} (its sha256 is {digest}, the registry says "
            f"{model.sha256}); re-export that version or sign the one the file holds"
        )
    release = Release("model", name, version, model.path.stat().st_size, digest)
    signed = SignedRelease(release, sign(load_private_key(key_path), release), model.path)
    record(registry_path.parent, signed)
    return signed


def sign_config(file: Path, name: str, version: str, key_path: Path, store: Path) -> SignedRelease:
    """Copy a box configuration into the release folder ``store`` and sign the copy."""
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {file}: {exc}") from exc
    if not data:
        raise ConfigError(f"{file} is empty")
    target = store / "configs" / _safe(name) / f"{_safe(version)}.yaml"
    if target.exists() and target.read_bytes() != data:
        raise ConfigError(
            f"configuration {name} {version} exists with other content ({target}); bump the version"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(file, target)
    release = Release("config", name, version, len(data), sha256_file(target))
    signed = SignedRelease(release, sign(load_private_key(key_path), release), target)
    record(store, signed)
    return signed


def _safe(part: str) -> str:
    if not part or "/" in part or "\\" in part or part.startswith("."):
        raise ConfigError(f"{part!r} cannot be a name or version: no slashes, not empty, no leading dot")
    return part


def record(folder: Path, signed: SignedRelease) -> None:
    """Add (or replace) ``signed`` in ``folder/signatures.json``, written atomically."""
    entries = [e for e in _entries(folder) if not _same(e, signed.release)]
    rel = os.path.relpath(signed.path, folder)
    entries.append(
        {
            "kind": signed.release.kind,
            "name": signed.release.name,
            "version": signed.release.version,
            "size": signed.release.size,
            "sha256": signed.release.sha256,
            "signature": signed.signature,
            "file": rel,
        }
    )
    entries.sort(key=lambda e: (e["kind"], e["name"], e["version"]))
    path = folder / SIGNATURES_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"format": SIGNATURES_FORMAT, "releases": entries}, indent=2) + "\n")
    tmp.replace(path)


def _same(entry: dict[str, Any], release: Release) -> bool:
    return (entry.get("kind"), entry.get("name"), entry.get("version")) == (
        release.kind,
        release.name,
        release.version,
    )


def _entries(folder: Path) -> list[dict[str, Any]]:
    path = folder / SIGNATURES_FILE
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        entries = data["releases"]
        if not isinstance(entries, list):
            raise TypeError("releases is not a list")
        return entries
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a signatures file: {exc!r}") from exc


def find_release(folder: Path, kind: ReleaseKind, name: str, version: str) -> SignedRelease:
    """The signed artifact ``kind name version`` of ``folder``; ConfigError says what is missing."""
    for entry in _entries(folder):
        if (entry.get("kind"), entry.get("name"), entry.get("version")) == (kind, name, version):
            release = Release(kind, name, version, int(entry["size"]), str(entry["sha256"]))
            return SignedRelease(release, str(entry["signature"]), folder / str(entry["file"]))
    how = "streetwatch model sign" if kind == "model" else "streetwatch fleet sign-config"
    raise ConfigError(
        f"{kind} {name} {version} is not signed in {folder / SIGNATURES_FILE}; sign it with {how}"
    )


def check_release(signed: SignedRelease, public_key: Ed25519PublicKey | None = None) -> None:
    """Raise unless the file still has the signed size and hash (and, given a key, the signature holds)."""
    path, release = signed.path, signed.release
    if not path.is_file():
        raise ConfigError(f"the file of {release.kind} {release.name} {release.version} is missing: {path}")
    if path.stat().st_size != release.size or sha256_file(path) != release.sha256:
        raise ConfigError(
            f"{path} no longer holds the signed {release.kind} {release.name} {release.version} "
            "(size or sha256 differ); sign the file again under a new version"
        )
    if public_key is not None:
        verify(public_key, release, signed.signature)

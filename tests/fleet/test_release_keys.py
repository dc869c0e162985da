"""The fleet's key pair and signed releases, through the commands a release manager runs."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streetwatch.cli import main
from streetwatch.errors import ConfigError, PayloadError
from streetwatch.release_signing import Release, verify
from streetwatch.releases import (
    check_release,
    find_release,
    generate_keypair,
    load_public_key,
    sign_config,
    sign_model,
)
from tests.fleet.releases_support import MODEL, write_registry


def test_keygen_writes_a_private_key_only_its_owner_reads_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    assert main(["fleet", "keygen", "--out", str(out)]) == 0
    private, public = out / "fleet-release.key", out / "fleet-release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in private.read_bytes() and b"PUBLIC KEY" in public.read_bytes()
    before = private.read_bytes()
    assert main(["fleet", "keygen", "--out", str(out)]) == 1  # refused, with a message
    assert private.read_bytes() == before


def test_model_sign_records_a_signature_the_contracts_verify_accepts(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "models", {"1.0.0": b"onnx-bytes-1", "2.0.0": b"onnx-bytes-22"})
    private, public = generate_keypair(tmp_path / "keys")
    assert main(["model", "sign", MODEL, "2.0.0", "--key", str(private), "--registry", str(registry)]) == 0
    recorded = json.loads((registry.parent / "signatures.json").read_text())["releases"]
    assert [(r["name"], r["version"], r["size"]) for r in recorded] == [(MODEL, "2.0.0", 13)]
    signed = find_release(registry.parent, "model", MODEL, "2.0.0")
    verify(load_public_key(public), signed.release, signed.signature)  # raises if it does not hold
    check_release(signed, load_public_key(public))
    # The same signature does not cover another version, nor verify under another key.
    other = Release("model", MODEL, "1.0.0", signed.release.size, signed.release.sha256)
    with pytest.raises(PayloadError, match="does not match"):
        verify(load_public_key(public), other, signed.signature)
    with pytest.raises(PayloadError, match="does not match"):
        verify(Ed25519PrivateKey.generate().public_key(), signed.release, signed.signature)


def test_a_version_whose_file_was_overwritten_cannot_be_signed_or_shipped(tmp_path: Path) -> None:
    registry = write_registry(tmp_path / "models", {"1.0.0": b"first"})
    private, _public = generate_keypair(tmp_path / "keys")
    (registry.parent / "det-1.0.0.onnx").write_bytes(b"re-exported")
    assert main(["model", "sign", MODEL, "1.0.0", "--key", str(private), "--registry", str(registry)]) == 1
    assert not (registry.parent / "signatures.json").exists()
    with pytest.raises(
        ConfigError, match=r"no model streetwatch-det 9\.9\.9; registered: streetwatch-det 1\.0\.0"
    ):
        sign_model(registry, MODEL, "9.9.9", private)
    with pytest.raises(ConfigError, match="is not signed"):
        find_release(registry.parent, "model", MODEL, "1.0.0")


def test_a_config_is_copied_signed_and_a_later_edit_of_the_original_changes_nothing(tmp_path: Path) -> None:
    private, public = generate_keypair(tmp_path / "keys")
    original = tmp_path / "van.yaml"
    original.write_text("device_id: van-01\n")
    store = tmp_path / "fleet"
    code = main(
        ["fleet", "sign-config", str(original), "--name", "van", "--version", "3", "--key", str(private),
         "--store", str(store)]
    )  # fmt: skip
    assert code == 0
    original.write_text("device_id: changed\n")
    signed = find_release(store, "config", "van", "3")
    check_release(signed, load_public_key(public))
    assert signed.path.read_text() == "device_id: van-01\n"
    with pytest.raises(ConfigError, match="exists with other content"):
        sign_config(original, "van", "3", private, store)
    signed.path.write_text("device_id: tampered\n")
    with pytest.raises(ConfigError, match="no longer holds the signed config van 3"):
        check_release(signed)

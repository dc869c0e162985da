"""Release signatures: a box accepts only what the fleet's release key signed, field for field."""

from __future__ import annotations

import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from streetwatch.errors import PayloadError
from streetwatch.release_signing import Release, sign, verify

RELEASE = Release(kind="model", name="streetwatch-det", version="1.6.0", size=12_345, sha256="0f" * 32)


@pytest.mark.parametrize("field", ["kind", "name", "version", "size", "sha256"])
def test_changing_any_signed_field_breaks_the_signature(field: str) -> None:
    key = Ed25519PrivateKey.generate()
    signature = sign(key, RELEASE)
    verify(key.public_key(), RELEASE, signature)
    changed = {"kind": "config", "name": "other", "version": "1.6.1", "size": 12_346, "sha256": "1f" * 32}
    with pytest.raises(PayloadError, match="does not match"):
        verify(key.public_key(), dataclasses.replace(RELEASE, **{field: changed[field]}), signature)


def test_another_key_and_garbage_are_refused() -> None:
    signature = sign(Ed25519PrivateKey.generate(), RELEASE)
    with pytest.raises(PayloadError, match="another key"):
        verify(Ed25519PrivateKey.generate().public_key(), RELEASE, signature)
    with pytest.raises(PayloadError, match="not base64"):
        verify(Ed25519PrivateKey.generate().public_key(), RELEASE, "not base64 at all!")

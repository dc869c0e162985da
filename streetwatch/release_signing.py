"""Release signatures: what a box checks before it installs a model or a configuration.

The fleet's release key is an Ed25519 key pair (``streetwatch fleet keygen``). The private
key stays with whoever releases (``streetwatch model sign``); boxes hold only the public
key. A signature covers :func:`signed_bytes` of the artifact's kind, name, version, size
and SHA-256 — not the download URL, which the server chooses at deploy time and which
carries no trust (the bytes are checked against the signed size and hash).

    >>> from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    >>> key = Ed25519PrivateKey.generate()
    >>> release = Release(kind="model", name="streetwatch-det", version="1.6.0", size=3, sha256="ab" * 32)
    >>> signature = sign(key, release)
    >>> verify(key.public_key(), release, signature)
    >>> newer = Release("model", "streetwatch-det", "1.6.1", 3, "ab" * 32)
    >>> verify(key.public_key(), newer, signature)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streetwatch.errors.PayloadError: the release signature does not match model streetwatch-det 1.6.1 (...)
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import asdict, dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from streetwatch.errors import PayloadError

ReleaseKind = Literal["model", "config"]


@dataclass(frozen=True)
class Release:
    """The fields a release signature covers."""

    kind: ReleaseKind
    name: str
    version: str
    size: int
    sha256: str


def signed_bytes(release: Release) -> bytes:
    """The exact bytes signed: compact JSON with sorted keys, prefixed so no other message collides."""
    body = json.dumps(asdict(release), sort_keys=True, separators=(",", ":"))
    return b"streetwatch-release-v1\n" + body.encode()


def sign(key: Ed25519PrivateKey, release: Release) -> str:
    """Base64 signature of ``release``."""
    return base64.b64encode(key.sign(signed_bytes(release))).decode()


def verify(key: Ed25519PublicKey, release: Release, signature: str) -> None:
    """Raise :class:`PayloadError` unless ``signature`` is ``key``'s signature of ``release``."""
    what = f"{release.kind} {release.name} {release.version}"
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(f"the release signature of {what} is not base64") from exc
    try:
        key.verify(raw, signed_bytes(release))
    except InvalidSignature as exc:
        raise PayloadError(
            f"the release signature does not match {what} (signed with another key, or the fields changed)"
        ) from exc

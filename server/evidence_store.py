"""A content-addressed store of evidence images on the filesystem.

A file's name is the SHA-256 of its bytes, computed here: nothing from a
payload or a topic ever becomes part of a path, so a hostile device cannot
write outside the store or overwrite another image. Writes are atomic
(temporary file, fsync, rename) and idempotent (the same bytes land once).

    store = EvidenceStore(Path("var/evidence"))
    stored = store.put(jpeg_bytes, expected_sha256=sha_from_event)
    data = store.read(stored.sha256)

Only JPEG is accepted (the box sends nothing else), and only after its header has been
read: an image declaring more pixels than :class:`ImageLimits` allow is refused before a
byte of it is decoded, because a few megabytes of compressed data can declare gigabytes of
pixels (a PNG of 3.3 MB took 27 s and 7.1 GB to decode).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from streetwatch.errors import PayloadError, StorageError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

#: The one image format the edge sends: JPEG (SOI marker, then the next marker's 0xFF).
_JPEG_MAGIC = b"\xff\xd8\xff"
#: Magic bytes of formats refused, to name them in the refusal.
_OTHER_FORMATS = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF8", "GIF"), (b"RIFF", "RIFF/WebP"), (b"BM", "BMP"))


class UndecodableImageError(PayloadError):
    """The bytes are not a JPEG OpenCV can decode (another format, truncated, corrupt)."""


class ImageTooLargeError(PayloadError):
    """The JPEG's header declares more pixels (or progressive scans) than the limits allow."""


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """What an evidence JPEG may declare in its header; checked before anything is decoded."""

    max_side: int = 8192  # pixels, width or height
    max_pixels: int = 40_000_000  # width x height; an 8K UHD frame is 33.2 million
    # Progressive JPEGs are decoded scan by scan over the whole image; encoders write about ten.
    max_scans: int = 64

    def too_large(self, width: int, height: int) -> bool:
        """True when a header declaring ``width`` x ``height`` pixels must be refused unread."""
        return width > self.max_side or height > self.max_side or width * height > self.max_pixels


class DigestMismatchError(PayloadError):
    """The bytes do not hash to the SHA-256 the sender announced."""


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    sha256: str
    path: str  # relative to the store's root
    size_bytes: int
    content_type: str
    width: int
    height: int

    def row(self, device_id: str, received_at: datetime) -> dict[str, Any]:
        """Its ``evidence`` table row (``device_id``: who first sent it)."""
        return {
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "content_type": self.content_type,
            "path": self.path,
            "width": self.width,
            "height": self.height,
            "device_id": device_id,
            "received_at": received_at,
        }


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inspect_image(data: bytes, limits: ImageLimits | None = None) -> tuple[str, str, int, int]:
    """(content type, file suffix, width, height) of a JPEG; raise if it is refused or does not decode.

    The header is read first and the size it declares checked against ``limits``; only then
    is the image decoded, at 1/8 scale and in grey: libjpeg still reads every entropy-coded
    block (so a truncated or corrupt file fails) but skips most of the work and holds an
    eighth of the rows, about 3x faster than a full decode.
    """
    limits = limits or ImageLimits()
    if not data.startswith(_JPEG_MAGIC):
        named = next((name for magic, name in _OTHER_FORMATS if data.startswith(magic)), None)
        what = f"a {named} image" if named else f"not an image (starts {data[:4]!r})"
        raise UndecodableImageError(f"evidence must be a JPEG; these {len(data)} bytes are {what}")
    size = _jpeg_size(data)
    if size is None:
        raise UndecodableImageError(f"JPEG evidence of {len(data)} bytes has no readable frame header")
    width, height = size
    if limits.too_large(width, height):
        raise ImageTooLargeError(
            f"JPEG declares {width}x{height} pixels; the limits are {limits.max_side} per side and "
            f"{limits.max_pixels:,} in all"
        )
    # Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker, so
    # this counts start-of-scan markers (plus any in metadata: an upper bound, which is enough).
    scans = data.count(b"\xff\xda")
    if scans > limits.max_scans:
        raise ImageTooLargeError(f"JPEG has {scans} scans; the limit is {limits.max_scans}")
    import cv2  # heavy; only the server's ingest needs it
    import numpy as np

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if image is None or image.size == 0:
        raise UndecodableImageError(f"JPEG evidence of {len(data)} bytes does not decode")
    return "image/jpeg", ".jpg", width, height


#: JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic...): they carry the size.
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    pos = 2  # after SOI
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in _SOF_MARKERS:
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return (width, height) if width and height else None
        pos += 2 + length
    return None


class EvidenceStore:
    """Images under ``root/<aa>/<bb>/<sha256><suffix>``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def relative_path(self, sha256: str, suffix: str) -> str:
        if not _SHA256.match(sha256):
            raise ValueError(f"{sha256!r} is not a lowercase hex SHA-256")
        return f"{sha256[:2]}/{sha256[2:4]}/{sha256}{suffix}"

    def put(
        self, data: bytes, expected_sha256: str | None = None, limits: ImageLimits | None = None
    ) -> StoredEvidence:
        """Verify and store ``data``; return where it is. Storing the same bytes twice is a no-op."""
        digest = sha256_hex(data)
        if expected_sha256 is not None and expected_sha256 != digest:
            raise DigestMismatchError(f"evidence hashes to {digest}, not the announced {expected_sha256}")
        content_type, suffix, width, height = inspect_image(data, limits)
        rel = self.relative_path(digest, suffix)
        target = self.root / rel
        if not target.exists():
            self._write_atomically(target, data)
        return StoredEvidence(digest, rel, len(data), content_type, width, height)

    def remove(self, relative: str) -> bool:
        """Delete a stored file (orphan clean-up, quota refusals); False when it was not there."""
        try:
            self.path_of(relative).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise StorageError(f"cannot delete evidence {relative}: {exc}") from exc
        return True

    def path_of(self, relative: str) -> Path:
        """The absolute path of a stored file, refusing anything that leaves the store."""
        candidate = (self.root / relative).resolve()
        if self.root.resolve() not in candidate.parents:
            raise ValueError(f"{relative!r} is not inside the evidence store")
        return candidate

    def read(self, relative: str) -> bytes:
        """The bytes of a stored file, checked against the SHA-256 in its name."""
        path = self.path_of(relative)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read evidence {path}: {exc}") from exc
        if sha256_hex(data) != path.stem:
            raise StorageError(f"evidence {path} is corrupt: its bytes no longer match its SHA-256")
        return data

    def _write_atomically(self, target: Path, data: bytes) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"cannot write evidence to {target}: {exc}") from exc

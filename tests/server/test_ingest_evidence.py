"""The content-addressed evidence store: verified, atomic, never a path from the payload."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from server.evidence_store import (
    DigestMismatchError,
    EvidenceStore,
    ImageLimits,
    ImageTooLargeError,
    UndecodableImageError,
    sha256_hex,
)
from streetwatch.errors import StorageError


def jpeg(width: int = 40, height: int = 30) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 128, dtype=np.uint8))
    assert ok
    return data.tobytes()


def png() -> bytes:
    ok, data = cv2.imencode(".png", np.zeros((8, 12), dtype=np.uint8))
    assert ok
    return data.tobytes()


def declaring(data: bytes, width: int, height: int) -> bytes:
    """The same JPEG with its frame header (SOF0) claiming another size: a decompression bomb's shape."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + data[sof + 9 :]


def test_put_stores_by_hash_and_reads_back(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    data = jpeg()
    stored = store.put(data, expected_sha256=sha256_hex(data))
    assert stored.sha256 == sha256_hex(data)
    assert stored.path == f"{stored.sha256[:2]}/{stored.sha256[2:4]}/{stored.sha256}.jpg"
    assert (stored.content_type, stored.width, stored.height) == ("image/jpeg", 40, 30)
    assert store.read(stored.path) == data
    assert store.put(data) == stored  # idempotent
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [f"{stored.sha256}.jpg"]


def test_png_is_refused_without_decoding_it(tmp_path: Path) -> None:
    with pytest.raises(UndecodableImageError, match=r"must be a JPEG; these \d+ bytes are a PNG image"):
        EvidenceStore(tmp_path).put(png())
    assert list(tmp_path.iterdir()) == []


def test_a_jpeg_declaring_too_many_pixels_is_refused_before_decoding(tmp_path: Path) -> None:
    """A small file whose header claims 30000x30000: libjpeg would fill in the missing data and
    allocate for the whole declared size; the header check refuses it first."""
    bomb = declaring(jpeg(64, 48), 30_000, 30_000)
    with pytest.raises(ImageTooLargeError, match="declares 30000x30000 pixels"):
        EvidenceStore(tmp_path).put(bomb)
    wide = declaring(jpeg(64, 48), 9000, 100)  # within the pixel budget, beyond the side limit
    with pytest.raises(ImageTooLargeError, match="9000x100"):
        EvidenceStore(tmp_path).put(wide)
    assert list(tmp_path.iterdir()) == []
    small = ImageLimits(max_side=8192, max_pixels=64 * 47)
    with pytest.raises(ImageTooLargeError, match="3,008 in all"):
        EvidenceStore(tmp_path).put(jpeg(64, 48), limits=small)


def test_a_progressive_jpeg_with_too_many_scans_is_refused(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".jpg", np.zeros((64, 64, 3), np.uint8), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    scans = data.tobytes().count(b"\xff\xda")
    assert scans > 2
    with pytest.raises(ImageTooLargeError, match=f"{scans} scans; the limit is 2"):
        EvidenceStore(tmp_path).put(data.tobytes(), limits=ImageLimits(max_scans=2))
    assert EvidenceStore(tmp_path).put(data.tobytes()).width == 64


def test_wrong_digest_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(DigestMismatchError, match="not the announced"):
        EvidenceStore(tmp_path).put(jpeg(), expected_sha256="0" * 64)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("data", [b"", b"GIF89a....", b"\xff\xd8\xff" + b"\x00" * 64, jpeg()[:40]])
def test_undecodable_images_are_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(UndecodableImageError):
        EvidenceStore(tmp_path).put(data)


def test_paths_outside_the_store_are_refused(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "store")
    with pytest.raises(ValueError, match="not inside"):
        store.path_of("../../etc/passwd")
    with pytest.raises(ValueError, match="SHA-256"):
        store.relative_path("../evil", ".jpg")


def test_a_corrupted_file_is_detected(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path)
    stored = store.put(jpeg())
    (tmp_path / stored.path).write_bytes(b"tampered")
    with pytest.raises(StorageError, match="corrupt"):
        store.read(stored.path)


def test_size_comes_from_the_header_of_a_progressive_jpeg(tmp_path: Path) -> None:
    image = np.zeros((123, 457, 3), dtype=np.uint8)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert ok
    stored = EvidenceStore(tmp_path).put(data.tobytes())
    assert (stored.width, stored.height) == (457, 123)

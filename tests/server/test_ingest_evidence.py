"""The content-addressed evidence store: verified, atomic, never a path from the payload."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from server.evidence_store import (
    DigestMismatchError,
    EvidenceStore,
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


def test_png_is_accepted(tmp_path: Path) -> None:
    stored = EvidenceStore(tmp_path).put(png())
    assert (stored.content_type, stored.width, stored.height) == ("image/png", 12, 8)


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

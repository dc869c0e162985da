"""Evidence: bounded sizes, content addressing, size cap and a full disk."""

from __future__ import annotations

import errno
import hashlib
import logging
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge.config import EvidenceConfig
from edge.evidence import EvidenceRecorder, EvidenceStore, crop
from edge.frames import Frame
from streetwatch.errors import StorageError
from streetwatch.paths import samples_dir

T0 = datetime(2026, 5, 4, 8, 0, tzinfo=timezone.utc)


def big_street_frame() -> Frame:
    """A real street photo (a shipped sample) blown up to 1920 px wide, so downscaling has work to do."""
    photo = min((samples_dir() / "images").glob("vehicles_*.jpg"))
    image = cv2.imread(str(photo))
    assert image is not None, f"cannot read the shipped sample {photo}"
    big: NDArray[np.uint8] = np.asarray(cv2.resize(image, (1920, 1920)), dtype=np.uint8)
    return Frame(image=big, timestamp=T0, index=0, source="test")


def config(tmp_path: Path, **overrides: object) -> EvidenceConfig:
    values: dict[str, object] = {"directory": str(tmp_path / "evidence"), "max_frame_width": 640,
                                 "max_crop_side": 200}  # fmt: skip
    values.update(overrides)
    return EvidenceConfig.model_validate(values)


def test_evidence_is_bounded_and_content_addressed(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(config(tmp_path))
    frame = big_street_frame()
    recorder.offer(1, frame, (300.0, 600.0, 1500.0, 1700.0), "truck", 0.8)
    evidence = recorder.evidence_for(1)
    assert evidence is not None
    full = cv2.imdecode(np.frombuffer(evidence.frame_jpeg, np.uint8), cv2.IMREAD_COLOR)
    piece = cv2.imdecode(np.frombuffer(evidence.crop_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert full is not None and piece is not None
    assert full.shape[1] == 640 and full.shape[0] == 640
    assert max(piece.shape[:2]) == 200
    ref = evidence.ref
    assert ref.frame_sha256 == hashlib.sha256(evidence.frame_jpeg).hexdigest()
    assert ref.crop_sha256 == hashlib.sha256(evidence.crop_jpeg).hexdigest()
    assert (ref.frame_bytes, ref.crop_bytes) == (len(evidence.frame_jpeg), len(evidence.crop_jpeg))
    assert ref.captured_at == T0
    stored = recorder.store.path_for(ref.frame_sha256)
    assert stored.read_bytes() == evidence.frame_jpeg
    assert recorder.store.path_for(ref.crop_sha256).read_bytes() == evidence.crop_jpeg
    # The box is drawn: red pixels along its top edge in the downscaled frame (scale 1/3).
    b, g, r = full[200, 100:500].mean(axis=0)
    assert r > 150 and g < 100 and b < 100


def test_the_clean_frame_is_the_same_view_with_nothing_drawn(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(config(tmp_path))
    frame = big_street_frame()
    recorder.offer(1, frame, (300.0, 600.0, 1500.0, 1700.0), "truck", 0.8)
    evidence = recorder.evidence_for(1)
    assert evidence is not None and evidence.clean_jpeg is not None
    ref = evidence.ref
    assert ref.clean_sha256 == hashlib.sha256(evidence.clean_jpeg).hexdigest()
    assert ref.clean_bytes == len(evidence.clean_jpeg)
    assert recorder.store.path_for(ref.clean_sha256).read_bytes() == evidence.clean_jpeg
    clean = cv2.imdecode(np.frombuffer(evidence.clean_jpeg, np.uint8), cv2.IMREAD_COLOR)
    drawn = cv2.imdecode(np.frombuffer(evidence.frame_jpeg, np.uint8), cv2.IMREAD_COLOR)
    expected = cv2.resize(frame.image, (640, 640), interpolation=cv2.INTER_AREA)
    # Same size as the annotated frame; where the box edge is drawn there, the clean frame
    # still shows the camera's pixels (up to JPEG loss).
    assert clean.shape == drawn.shape
    edge_row = (slice(199, 202), slice(100, 500))
    assert np.abs(clean[edge_row].astype(int) - expected[edge_row].astype(int)).mean() < 12
    assert np.abs(drawn[edge_row].astype(int) - expected[edge_row].astype(int)).mean() > 40


def test_clean_frames_can_be_turned_off(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(config(tmp_path, keep_clean_frame=False))
    recorder.offer(1, big_street_frame(), (300.0, 600.0, 1500.0, 1700.0), "truck", 0.8)
    evidence = recorder.evidence_for(1)
    assert evidence is not None
    assert evidence.clean_jpeg is None
    assert evidence.ref.clean_sha256 is None and evidence.ref.clean_bytes is None


def test_one_frame_per_key_is_kept_and_release_frees_it(tmp_path: Path) -> None:
    # Which frame is best is the rule engine's call (test_rules: offers follow the best score):
    # a new offer for a key replaces the frame kept for it.
    recorder = EvidenceRecorder(config(tmp_path))
    frame = big_street_frame()
    later = Frame(image=frame.image, timestamp=T0.replace(minute=5), index=1, source="test")
    recorder.offer(7, frame, (0.0, 0.0, 900.0, 900.0), "truck", 0.5)
    recorder.offer(7, later, (0.0, 0.0, 900.0, 900.0), "truck", 0.9)
    evidence = recorder.evidence_for(7)
    assert evidence is not None and evidence.ref.captured_at == later.timestamp
    assert recorder.kept == 1
    recorder.release(7)
    assert recorder.kept == 0
    assert recorder.evidence_for(7) is None


def test_a_second_stage_judges_the_nearest_view_and_its_evidence_shows_it_until_released(
    tmp_path: Path,
) -> None:
    recorder = EvidenceRecorder(config(tmp_path))
    frame = big_street_frame()
    near = Frame(image=frame.image[::-1].copy(), timestamp=T0.replace(minute=5), index=1, source="test")
    recorder.offer(7, frame, (0.0, 0.0, 300.0, 300.0), "truck", 0.9)
    best = recorder.stage_view(7)
    assert best is not None and best == recorder.best_view(7)  # no nearer view: the best frame
    recorder.offer_view(7, near, (0.0, 0.0, 900.0, 900.0), "truck", 0.6)
    view, best_now = recorder.stage_view(7), recorder.best_view(7)
    assert view is not None and best_now is not None
    assert view[1][2] > best_now[1][2]  # the nearer (larger) box, in the same downscaled pixels
    assert not np.array_equal(view[0], best_now[0])
    # The dispatcher sees what the stage judged: the nearest view, not the best-scoring frame.
    evidence = recorder.evidence_for(7)
    assert evidence is not None and evidence.ref.captured_at == near.timestamp
    assert evidence.ref.box == (0.0, 0.0, 900.0, 900.0)
    recorder.release(7)
    assert recorder.stage_view(7) is None and recorder.best_view(7) is None


def test_crop_keeps_a_margin_and_stays_inside() -> None:
    image = np.zeros((100, 200, 3), dtype=np.uint8)
    assert crop(image, (50, 20, 150, 60), margin=0.1, max_side=1000).shape == (48, 120, 3)
    assert crop(image, (0, 0, 200, 100), margin=0.5, max_side=1000).shape == (100, 200, 3)


def test_store_deletes_oldest_beyond_the_cap(tmp_path: Path) -> None:
    store = EvidenceStore(tmp_path / "ev", max_total_bytes=2500)
    blobs = [bytes([i]) * 1000 for i in range(4)]
    digests = [store.put(b) for b in blobs]
    assert store.total_bytes <= 2500
    present = [store.path_for(d).exists() for d in digests]
    assert present == [False, False, True, True]
    # A fresh store counts what is already on disk.
    again = EvidenceStore(tmp_path / "ev", max_total_bytes=2500)
    assert again.total_bytes == 2000
    assert again.put(blobs[3]) == digests[3]
    assert again.total_bytes == 2000


def test_full_disk_drops_evidence_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = EvidenceRecorder(config(tmp_path))

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("edge.evidence.store.open", full_disk, raising=False)
    recorder.offer(1, big_street_frame(), (10.0, 10.0, 500.0, 500.0), "truck", 0.7)
    with caplog.at_level(logging.WARNING, logger="edge.evidence"):
        assert recorder.evidence_for(1) is None
    assert recorder.failures == 1
    assert "full" in caplog.text
    assert [p for p in (tmp_path / "evidence").rglob("*") if p.is_file()] == []  # no half files
    with pytest.raises(StorageError, match=r"disk holding .* is full"):
        recorder.store.put(b"x")


def test_the_evidence_names_the_objects_box_in_its_frame_clipped_to_it(tmp_path: Path) -> None:
    recorder = EvidenceRecorder(config(tmp_path))
    frame = big_street_frame()  # 1920 x 1920
    recorder.offer(1, frame, (300.0, 600.0, 2000.0, 1700.0), "truck", 0.8)
    first = recorder.evidence_for(1)
    assert first is not None
    assert first.ref.box == (300.0, 600.0, 1920.0, 1700.0)
    # An event of a frame of another size (a replay of photos of several sizes) does not carry it.
    assert first.ref_for((1920, 1920)).box == first.ref.box
    assert first.ref_for((640, 480)).box is None
    assert first.ref_for((640, 480)).frame_sha256 == first.ref.frame_sha256

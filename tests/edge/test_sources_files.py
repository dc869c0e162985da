"""Replay sources on real photos: an image folder with corrupt files, and real (and truncated) videos."""

from __future__ import annotations

import functools
import http.server
import itertools
import logging
import shutil
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import SourceConfig
from edge.frames import Frame
from edge.interfaces import FrameSource
from edge.sources import open_source
from edge.sources.images import decode_image
from streetwatch.errors import SourceError

PHOTOS = Path(__file__).resolve().parents[3] / "shared" / "data" / "garbage" / "val" / "images"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)


def real_photos(n: int) -> list[Path]:
    photos = sorted(PHOTOS.glob("*.jpg"))[:n]
    if len(photos) < n:
        pytest.skip(f"real photos not found in {PHOTOS}")
    return photos


@pytest.fixture
def dashcam_folder(tmp_path: Path) -> Path:
    """img1, img2, img3 (truncated JPEG), img4 (empty .png), img10, and a non-image file."""
    folder = tmp_path / "dashcam"
    folder.mkdir()
    photos = real_photos(3)
    shutil.copy(photos[0], folder / "img1.jpg")
    shutil.copy(photos[1], folder / "img2.jpg")
    data = photos[2].read_bytes()
    (folder / "img3.jpg").write_bytes(data[: len(data) // 2])
    (folder / "img4.png").write_bytes(b"")
    shutil.copy(photos[2], folder / "img10.JPG")
    (folder / "notes.txt").write_text("not an image")
    return folder


def write_video(path: Path, n_frames: int, fps: float = 10.0, size: tuple[int, int] = (320, 240)) -> None:
    """A real MJPEG AVI made of real street photos (one photo per frame)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for photo in real_photos(n_frames):
        image = cv2.imread(str(photo))
        assert image is not None
        writer.write(cv2.resize(image, size))
    writer.release()


def take(source: FrameSource, n: int) -> list[Frame]:
    out: list[Frame] = []
    for frame in source:
        out.append(frame)
        if len(out) == n:
            break
    return out


def test_images_play_in_natural_order_skipping_corrupt_files(dashcam_folder: Path, caplog) -> None:
    cfg = SourceConfig(kind="images", uri=str(dashcam_folder), start_time=T0, image_interval_s=2.0)
    source = open_source(cfg, name="dash1")
    with caplog.at_level(logging.WARNING):
        frames = list(source)
    source.close()
    # img1, img2, img10 are readable; img3 (truncated) and img4 (empty) are skipped but keep their slot.
    assert [f.index for f in frames] == [0, 1, 4]
    assert [f.timestamp for f in frames] == [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=8)]
    assert all(f.source == "dash1" and f.image.dtype == np.uint8 and f.image.ndim == 3 for f in frames)
    original = cv2.imread(str(dashcam_folder / "img10.JPG"))
    assert original is not None and original.shape == frames[2].image.shape
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "img3.jpg" in warned and "img4.png" in warned and "img1.jpg" not in warned


def test_truncated_jpeg_is_rejected(dashcam_folder: Path) -> None:
    data = (dashcam_folder / "img3.jpg").read_bytes()
    assert decode_image(data) is None
    assert decode_image(data[:200]) is None
    assert decode_image((dashcam_folder / "img1.jpg").read_bytes()) is not None


def test_images_loop_continues_the_timeline(dashcam_folder: Path, caplog) -> None:
    cfg = SourceConfig(kind="images", uri=str(dashcam_folder), start_time=T0, loop=True)
    with caplog.at_level(logging.WARNING):
        frames = take(open_source(cfg), 6)
    assert [f.index for f in frames] == [0, 1, 4, 5, 6, 9]
    assert frames[-1].timestamp == T0 + timedelta(seconds=9)
    assert sum("img3.jpg" in r.getMessage() for r in caplog.records) == 1  # warned once, not every pass


def test_images_fps_limit_drops_frames(dashcam_folder: Path) -> None:
    cfg = SourceConfig(
        kind="images", uri=str(dashcam_folder), start_time=T0, image_interval_s=0.5, fps_limit=1
    )
    frames = list(open_source(cfg))
    assert [f.index for f in frames] == [0, 4]  # 0 s and 2 s kept; img3 at 1 s was due but corrupt


def test_images_without_start_time_use_the_clock(dashcam_folder: Path) -> None:
    cfg = SourceConfig(kind="images", uri=str(dashcam_folder))
    frames = list(open_source(cfg, clock=lambda: T0 + timedelta(hours=1)))
    assert frames[0].timestamp == T0 + timedelta(hours=1)


def test_images_bad_folders_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(SourceConfig(kind="images", uri=str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="holds no images"):
        open_source(SourceConfig(kind="images", uri=str(tmp_path / "empty")))


def test_video_file_frames_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "drive.avi"
    write_video(path, 10, fps=10)
    source = open_source(SourceConfig(kind="video", uri=str(path), start_time=T0), name="front")
    frames = list(source)
    source.close()
    assert len(frames) == 10
    assert [f.index for f in frames] == list(range(10))
    deltas = [(f.timestamp - T0).total_seconds() for f in frames]
    np.testing.assert_allclose(deltas, np.arange(10) / 10, atol=1e-3)
    assert frames[0].image.shape == (240, 320, 3) and frames[0].source == "front"


def test_truncated_video_yields_frames_up_to_the_damage_then_ends_with_a_warning(
    tmp_path: Path, caplog
) -> None:
    whole = tmp_path / "whole.avi"
    write_video(whole, 10)
    data = whole.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: int(len(data) * 0.55)])
    with caplog.at_level(logging.WARNING):
        frames = list(open_source(SourceConfig(kind="video", uri=str(cut), start_time=T0)))
    assert 2 <= len(frames) < 10
    intact = list(open_source(SourceConfig(kind="video", uri=str(whole), start_time=T0)))
    # The frames before the damage are the same pictures as in the intact file.
    assert np.array_equal(frames[0].image, intact[0].image)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cut.avi" in m and "truncated" in m and "of 10 frames" in m for m in warnings)


def test_video_loop_and_fps_limit(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    write_video(path, 4, fps=10)
    looped = take(open_source(SourceConfig(kind="video", uri=str(path), start_time=T0, loop=True)), 10)
    deltas = [round((f.timestamp - T0).total_seconds(), 3) for f in looped]
    assert deltas == [round(0.1 * i, 3) for i in range(10)]  # the timeline keeps going across loops
    limited = list(open_source(SourceConfig(kind="video", uri=str(path), start_time=T0, fps_limit=5)))
    assert [round((f.timestamp - T0).total_seconds(), 3) for f in limited] == [0.0, 0.2]


def test_video_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        open_source(SourceConfig(kind="video", uri=str(tmp_path / "missing.mp4")))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 10)
    with pytest.raises(SourceError, match=r"junk\.mp4"):
        open_source(SourceConfig(kind="video", uri=str(junk)))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


def test_http_stream_through_ffmpeg_reconnects_and_gives_up_when_the_server_is_gone(
    tmp_path: Path, caplog
) -> None:
    """A real HTTP server, real FFmpeg: the end of the stream is a loss, reconnecting replays it."""
    write_video(tmp_path / "cam.avi", 10)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/cam.avi"
    sleeps: list[float] = []
    source = open_source(SourceConfig(kind="stream", uri=url, max_reconnects=2), sleep=sleeps.append)
    frames: list[Frame] = []
    try:
        with caplog.at_level(logging.INFO), pytest.raises(SourceError, match="gave up after 2"):
            for frame in source:
                frames.append(frame)
                if len(frames) == 15:  # into the second play: stop the server
                    server.shutdown()
                    server.server_close()
    finally:
        server.shutdown()
        server.server_close()
        source.close()
    assert 15 <= len(frames) <= 20  # the first play, and what FFmpeg had fetched of the second
    assert frames[0].image.shape == (240, 320, 3)
    assert all(b.timestamp >= a.timestamp for a, b in itertools.pairwise(frames))
    assert sleeps == [1.0, 1.0, 2.0]  # reconnected at once after the first end; then 2 failures
    states = [r.getMessage() for r in caplog.records if r.name == "edge.sources.live"]
    assert sum("lost" in m for m in states) == 2 and sum("is back" in m for m in states) == 1

"""Live sources: reconnect with backoff (fake opener, fake sleep), USB and GStreamer errors."""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from edge.config import SourceConfig
from edge.frames import Frame
from edge.sources import open_source
from edge.sources.capture import redact_url
from edge.sources.devices import gstreamer_opener, opencv_has_gstreamer, usb_device_index
from streetwatch.errors import SourceError

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
URL = "rtsp://admin:hunter2@10.0.0.5:554/stream1"


def image(value: int) -> np.ndarray:
    return np.full((4, 6, 3), value, dtype=np.uint8)


class FakeCapture:
    """Plays a list of read results, then fails every read (a dropped connection)."""

    def __init__(self, reads: list[np.ndarray | str | None]) -> None:
        self.reads = list(reads)
        self.released = False

    def isOpened(self) -> bool:  # mirrors OpenCV's name
        return True

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not self.reads:
            return False, None
        item = self.reads.pop(0)
        if isinstance(item, str):  # "garbage": the read succeeds but the frame is not an image
            return True, None
        return item is not None, item

    def get(self, prop_id: int) -> float:
        return 0.0

    def release(self) -> None:
        self.released = True


class ClosedCapture(FakeCapture):
    def isOpened(self) -> bool:
        return False


class Opener:
    """Returns the scripted captures in turn; ``None`` in the script means the open fails."""

    def __init__(self, script: list[FakeCapture | None]) -> None:
        self.script = list(script)
        self.calls = 0
        self.opened: list[FakeCapture] = []

    def __call__(self) -> FakeCapture:
        self.calls += 1
        item = self.script.pop(0) if self.script else None
        if item is None:
            return ClosedCapture([])
        self.opened.append(item)
        return item


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=0.04)
        return self.now


def stream_config(**overrides: object) -> SourceConfig:
    values: dict[str, object] = {"kind": "stream", "uri": URL, "reconnect_initial_s": 1, "reconnect_max_s": 8}
    values.update(overrides)
    return SourceConfig.model_validate(values)


def test_stream_reconnects_with_capped_exponential_backoff_and_gives_up(caplog) -> None:
    first = FakeCapture([image(1), image(2), image(3)])
    second = FakeCapture([image(4), image(5)])
    opener = Opener([first, None, None, None, second])
    sleeps: list[float] = []
    source = open_source(
        stream_config(max_reconnects=5), opener=opener, sleep=sleeps.append, clock=FakeClock(), name="gate"
    )
    frames: list[Frame] = []
    with caplog.at_level(logging.INFO), pytest.raises(SourceError, match="gave up after 5 failed reconnect"):
        for frame in source:
            frames.append(frame)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2, 3, 4, 5]
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert all(f.source == "gate" for f in frames)
    assert [b.timestamp > a.timestamp for a, b in itertools.pairwise(frames)] == [True] * 4
    # After the first loss: 1, 2, 4 fail, 8 works. After the second: 1, 2, 4, 8, 8 all fail (capped at 8).
    assert sleeps == [1, 2, 4, 8, 1, 2, 4, 8, 8]
    assert first.released and second.released
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert sum("lost" in m for m in messages) == 2
    assert sum("is back" in m for m in messages) == 1
    assert len(messages) == 3  # one line per change of state, none per retry
    assert all("hunter2" not in m for m in messages)


def test_stream_down_at_start_is_retried() -> None:
    opener = Opener([None, None, FakeCapture([image(7)])])
    sleeps: list[float] = []
    source = open_source(stream_config(max_reconnects=3), opener=opener, sleep=sleeps.append)
    frames: list[Frame] = []
    with pytest.raises(SourceError):
        frames.extend(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [7]
    # First try fails, retry after 1 s fails, retry after 2 s works; after the loss 3 more fail.
    assert opener.calls == 1 + 2 + 3
    assert sleeps == [1, 2, 1, 2, 4]


def test_zero_reconnects_gives_up_at_once() -> None:
    opener = Opener([None, FakeCapture([image(7)])])
    source = open_source(stream_config(max_reconnects=0), opener=opener, sleep=lambda s: None)
    frames: list[Frame] = []
    with pytest.raises(SourceError, match="max_reconnects = 0"):
        frames.extend(source)
    assert frames == [] and opener.calls == 1


def test_close_during_backoff_ends_the_iteration_cleanly() -> None:
    capture = FakeCapture([image(1)])
    opener = Opener([capture])
    source = open_source(stream_config(), opener=opener, sleep=lambda s: source.close())
    frames = list(source)
    assert len(frames) == 1 and capture.released
    assert opener.calls == 1


def test_garbage_frames_are_skipped_with_a_warning(caplog) -> None:
    capture = FakeCapture([image(1), "garbage", image(2)])
    source = open_source(stream_config(max_reconnects=0), opener=Opener([capture]), sleep=lambda s: None)
    frames: list[Frame] = []
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError):
        frames.extend(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [1, 2]
    assert any("not a BGR image" in r.getMessage() for r in caplog.records)


def test_live_fps_limit_uses_frame_times() -> None:
    capture = FakeCapture([image(i) for i in range(10)])  # 25 fps by the fake clock
    source = open_source(
        stream_config(fps_limit=5, max_reconnects=0),
        opener=Opener([capture]),
        sleep=lambda s: None,
        clock=FakeClock(),
    )
    frames: list[Frame] = []
    with pytest.raises(SourceError):
        frames.extend(source)
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 5]


def test_frames_carry_utc_wall_clock_times() -> None:
    clock = FakeClock()
    source = open_source(
        stream_config(max_reconnects=0), opener=Opener([FakeCapture([image(1)])]), clock=clock
    )
    frames: list[Frame] = []
    with pytest.raises(SourceError):
        frames.extend(source)
    assert frames[0].timestamp == T0 + timedelta(seconds=0.04)


def test_stream_needs_a_url() -> None:
    with pytest.raises(SourceError, match="rtsp://"):
        open_source(SourceConfig(kind="stream", uri="/tmp/file.mp4"))


def test_redact_url_hides_passwords_only() -> None:
    assert redact_url(URL) == "rtsp://admin:***@10.0.0.5:554/stream1"
    assert redact_url("http://cam.local/video.mjpg") == "http://cam.local/video.mjpg"


def test_usb_missing_device_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match=r"/dev/video57 does not exist"):
        open_source(SourceConfig(kind="usb", uri="/dev/video57"))
    with pytest.raises(SourceError, match="camera index"):
        open_source(SourceConfig(kind="usb", uri="front-camera"))


def test_usb_device_that_will_not_open_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open USB camera"):
        open_source(SourceConfig(kind="usb", uri="0"), opener=Opener([None]))


def test_usb_camera_frames_through_an_opener() -> None:
    source = open_source(
        SourceConfig(kind="usb", uri="0", max_reconnects=0), opener=Opener([FakeCapture([image(9)])])
    )
    frames: list[Frame] = []
    with pytest.raises(SourceError):
        frames.extend(source)
    assert len(frames) == 1
    assert usb_device_index("/dev/video3") == 3


def test_gstreamer_without_opencv_support_says_so() -> None:
    if opencv_has_gstreamer():
        pytest.skip("this OpenCV has GStreamer")
    pipeline = "videotestsrc ! videoconvert ! appsink"
    with pytest.raises(SourceError, match="GStreamer"):
        open_source(SourceConfig(kind="gstreamer", uri=pipeline))


def test_gstreamer_pipeline_must_end_in_appsink() -> None:
    with pytest.raises(SourceError, match="appsink"):
        gstreamer_opener("videotestsrc ! autovideosink", has_gstreamer=lambda: True)
    assert callable(gstreamer_opener("videotestsrc ! appsink drop=true", has_gstreamer=lambda: True))

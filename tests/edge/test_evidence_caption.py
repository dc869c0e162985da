"""The caption under the annotated evidence frame: when, where and which camera; the clean frame untouched."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from edge.config import EvidenceConfig
from edge.evidence import EvidenceRecorder
from edge.evidence.caption import caption_text, with_caption
from edge.frames import Frame
from streetwatch.events import ObjectPosition, Position, ViolationEvent
from tests.test_events import make_event

TAKEN = datetime(2026, 1, 15, 2, 0, 3, tzinfo=timezone.utc)
SAIGON = ZoneInfo("Asia/Ho_Chi_Minh")


def placed(event: ViolationEvent) -> ViolationEvent:
    place = ObjectPosition(lat=31.23018, lon=121.47, accuracy_m=5.6, along_m=20.0)
    return event.model_copy(update={"object_position": place})


def test_the_caption_says_when_in_local_time_where_and_which_camera() -> None:
    event = make_event(device_id="van-07", camera_id="front")
    text = caption_text(TAKEN, event, SAIGON)
    assert text == "2026-01-15 09:00:03 +07 | camera at 31.23000, 121.47000 +/-3 m | van-07/front"
    assert caption_text(TAKEN, placed(event), ZoneInfo("UTC")) == (
        "2026-01-15 02:00:03 UTC | object at 31.23018, 121.47000 +/-6 m | van-07/front"
    )
    assert "no position fix" in caption_text(TAKEN, event.model_copy(update={"position": None}), SAIGON)


def test_the_cameras_fix_is_the_one_when_the_picture_was_taken() -> None:
    """The evidence frame is often seconds older than the event: its own fix, not the event's."""
    then = Position(lat=31.22990, lon=121.46980, accuracy_m=4.0, source="gpx")
    text = caption_text(TAKEN, make_event(), SAIGON, camera=then)
    assert "camera at 31.22990, 121.46980 +/-4 m" in text
    assert "object at" in caption_text(TAKEN, placed(make_event()), SAIGON, camera=then)  # placed wins


@pytest.mark.parametrize("width", [1920, 640, 160])
def test_the_strip_goes_below_the_scene_and_holds_the_whole_text(width: int) -> None:
    scene = np.full((120, width, 3), 90, dtype=np.uint8)
    framed = with_caption(scene, caption_text(TAKEN, make_event(), SAIGON))
    assert framed.shape[1] == width and framed.shape[0] > 120
    assert np.array_equal(framed[:120], scene)  # nothing drawn over the scene
    strip = framed[120:]
    lit = np.argwhere(strip.max(axis=2) > 128)
    assert len(lit) > 50  # text is there
    assert lit[:, 1].max() < width - 2  # and not cut at the right edge
    rows = np.flatnonzero(strip.max(axis=(1, 2)) > 128)
    lines = 1 + int(np.count_nonzero(np.diff(rows) > 1))  # bands of lit rows
    assert lines == 1 if width >= 640 else lines >= 2  # narrow frames wrap rather than shrink


def frame_at(when: datetime) -> Frame:
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    cv2.rectangle(image, (100, 60), (200, 180), (0, 200, 0), -1)
    return Frame(image=image, timestamp=when, index=0, source="test")


def decode(jpeg: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_the_recorder_captions_the_annotated_frame_only(tmp_path: Path) -> None:
    config = EvidenceConfig(directory=str(tmp_path / "on"), timezone="Asia/Ho_Chi_Minh")
    recorder = EvidenceRecorder(config)
    recorder.offer(1, frame_at(TAKEN), (100, 60, 200, 180), "signboard", 0.9)
    evidence = recorder.evidence_for(1, placed(make_event()))
    assert evidence is not None and evidence.clean_jpeg is not None
    drawn, clean = decode(evidence.frame_jpeg), decode(evidence.clean_jpeg)
    assert clean.shape == (240, 320, 3) and decode(evidence.crop_jpeg).shape[0] < 240
    assert drawn.shape[1] == 320 and drawn.shape[0] > 240  # the strip under the frame

    plain = EvidenceRecorder(EvidenceConfig(directory=str(tmp_path / "off"), caption=False))
    plain.offer(1, frame_at(TAKEN), (100, 60, 200, 180), "signboard", 0.9)
    uncaptioned = plain.evidence_for(1, make_event())
    assert uncaptioned is not None and decode(uncaptioned.frame_jpeg).shape == (240, 320, 3)


def test_an_unknown_time_zone_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Saigon/Nowhere'"):
        EvidenceConfig(timezone="Saigon/Nowhere")

"""The caption under an annotated evidence frame: when the picture was taken, where, and by which camera.

An inspector acts on a printed or forwarded photo, often without the case record beside it, so the
picture itself says when and where, as enforcement cameras do. The caption goes in a strip *below*
the frame, never over the scene, and only on the annotated frame: the clean frame stays as the
camera saw it (it becomes training data) and the crop stays the object's.

    text = caption_text(captured_at, event, ZoneInfo("Asia/Ho_Chi_Minh"))
    # '2026-01-15 09:00:03 +07 | object at 10.77790, 106.70110 +/-6 m | demo-van-01/front'
    framed = with_caption(image, text)
"""

from __future__ import annotations

from datetime import datetime, tzinfo

import cv2
import numpy as np

from edge.evidence.render import Image
from streetwatch.events import Position, ViolationEvent

_STRIP_COLOUR = (0, 0, 0)
_TEXT_COLOUR = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX  # built into OpenCV: no font file to ship or download
_SEPARATOR = " | "  # Hershey fonts are ASCII only
_MARGIN = 4  # pixels left and right of the text
#: The smallest font scale still readable on a phone; narrower frames wrap the caption instead.
MIN_SCALE = 0.4


def caption_text(
    captured_at: datetime, event: ViolationEvent, zone: tzinfo, camera: Position | None = None
) -> str:
    """Time in ``zone``, the place (the object's when the box placed it, else the camera's fix when the
    picture was taken, ``camera``, or the event's), and the device and camera."""
    local = captured_at.astimezone(zone)
    when = f"{local:%Y-%m-%d %H:%M:%S} {local.tzname() or local.strftime('%z')}"
    fix = camera or event.position
    if event.object_position is not None:
        place = event.object_position
        where = f"object at {place.lat:.5f}, {place.lon:.5f} +/-{place.accuracy_m:.0f} m"
    elif fix is not None:
        accuracy = f" +/-{fix.accuracy_m:.0f} m" if fix.accuracy_m is not None else ""
        where = f"camera at {fix.lat:.5f}, {fix.lon:.5f}{accuracy}"
    else:
        where = "no position fix"
    return _SEPARATOR.join((when, where, f"{event.device_id}/{event.camera_id}"))


def with_caption(image: Image, text: str) -> Image:
    """``image`` with a black strip below it holding ``text`` in white, sized to the image's width.

    A narrow frame gets the caption's parts on several lines rather than letters too small to read;
    only a part that does not fit a line on its own is drawn smaller.
    """
    width = image.shape[1]
    scale = max(MIN_SCALE, width / 1600)
    lines = _wrap(text.split(_SEPARATOR), scale, width - 2 * _MARGIN)
    scales = [_fitting(line, scale, width) for line in lines]
    sizes = [cv2.getTextSize(line, _FONT, s, 1) for line, s in zip(lines, scales, strict=True)]
    line_h = max(h + base for (_, h), base in sizes)
    pad = max(3, line_h // 3)
    strip = np.full((len(lines) * (line_h + pad) + pad, width, 3), _STRIP_COLOUR, dtype=np.uint8)
    for i, (line, s, ((_, h), _base)) in enumerate(zip(lines, scales, sizes, strict=True)):
        baseline_y = pad + i * (line_h + pad) + h
        cv2.putText(strip, line, (_MARGIN, baseline_y), _FONT, s, _TEXT_COLOUR, 1, cv2.LINE_AA)
    return np.ascontiguousarray(np.vstack([image, strip]))


def _text_width(text: str, scale: float) -> int:
    (width, _), _ = cv2.getTextSize(text, _FONT, scale, 1)
    return int(width)


def _wrap(parts: list[str], scale: float, room: int) -> list[str]:
    """Parts joined on one line while they fit ``room`` pixels, then on the next."""
    lines: list[str] = []
    for part in parts:
        joined = f"{lines[-1]}{_SEPARATOR}{part}" if lines else part
        if lines and _text_width(joined, scale) <= room:
            lines[-1] = joined
        else:
            lines.append(part)
    return lines


def _fitting(line: str, scale: float, width: int) -> float:
    """``scale``, or smaller when ``line`` alone is wider than the frame."""
    room = width - 2 * _MARGIN
    needed = _text_width(line, scale)
    return scale if needed <= room else 0.95 * scale * room / needed  # 0.95: anti-aliasing bleeds

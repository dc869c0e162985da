"""Keeps the best frame of every open track in memory and turns it into stored evidence on demand.

Which frame is the best is the rule engine's call (:class:`edge.rules.RuleEngine` keeps the best
score per evidence key and offers a frame only when it beats it); the recorder keeps what it is
offered, so the two can never disagree about a track's best frame. For the violation types a
second stage judges (the truck load stage), the engine also offers each track's nearest view
(its largest box): the stage judges that one (``stage_view``), and it is the evidence too. A far
truck often scores higher than the same truck close up, but its load can be seen only near: the
dispatcher who confirms or overrules the stage's answer sees what the stage saw, and the crop a
review turns into a field label (``training.truck_load.field_labels``) is the kind of crop the
stage is asked about.

The evidence names where the object is in it (``EvidenceRef.box``): an event's own box is the
latest frame's, and from a moving van the object has moved since its best frame, so a box drawn
from the event onto the evidence (the console, a label for retraining) would miss it.

The annotated frame carries a caption strip below the picture (``edge.evidence.caption``): when it
was taken, where, and by which camera, from the event it first goes out with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from edge.config import EvidenceConfig, zone_of
from edge.evidence.caption import caption_text, with_caption
from edge.evidence.render import Image, annotate, crop, downscale, encode_jpeg
from edge.evidence.store import EvidenceStore
from edge.frames import Frame
from edge.geometry import clip_box
from edge.interfaces import Evidence
from streetwatch.errors import StorageError
from streetwatch.events import EvidenceRef, Position, ViolationEvent

log = logging.getLogger(__name__)


@dataclass
class _KeptFrame:
    image: Image  # already downscaled to max_frame_width
    box: tuple[float, float, float, float]  # in pixels of ``image``
    #: The same box in pixels of the original frame, clipped to it (None: nothing of it is inside).
    frame_box: tuple[float, float, float, float] | None
    label: str
    score: float
    captured_at: datetime
    frame_size: tuple[int, int]  # width, height of the original frame
    position: Position | None  # the camera's fix when the frame was taken
    evidence: Evidence | None = None  # rendered and stored once, on first use


class EvidenceRecorder:
    """One downscaled frame per open track (bounded memory), rendered to JPEG when an event needs it.

    Keys are the rule engine's evidence keys: ``offer`` when it says a frame is
    the best so far (it replaces the kept one), ``evidence_for`` when an event goes out,
    ``release`` when the track is gone.
    """

    def __init__(self, config: EvidenceConfig, store: EvidenceStore | None = None) -> None:
        self.config = config
        self.store = store or EvidenceStore(config.directory, int(config.max_total_mb * 1024 * 1024))
        self._kept: dict[int, _KeptFrame] = {}
        #: The nearest view of keys a second stage judges (RuleResult.views): their evidence too.
        self._views: dict[int, _KeptFrame] = {}
        self._last_frame: Frame | None = None
        self._last_small: tuple[Image, float] | None = None
        self._zone = zone_of(config.timezone)
        self.failures = 0

    @property
    def kept(self) -> int:
        """Best frames held in memory right now (one per open track at most). A truck the load stage
        judges may hold a second, its nearest view, until its track ends (``stage_view``); while that
        is also its best frame, the two share one image."""
        return len(self._kept)

    def offer(
        self,
        key: int,
        frame: Frame,
        box: Sequence[float],
        label: str,
        score: float,
        position: Position | None = None,
    ) -> None:
        """Keep ``frame`` as ``key``'s best (the rule engine offers only a better one than before);
        ``position``: the camera's fix when it was taken, for the caption."""
        self._keep(self._kept, key, self._kept_frame(frame, box, label, score, position))

    def offer_view(
        self,
        key: int,
        frame: Frame,
        box: Sequence[float],
        label: str,
        score: float,
        position: Position | None = None,
    ) -> None:
        """Keep ``frame`` as ``key``'s nearest view (the rule engine offers only a nearer one); from
        now on it is what a second stage judges and what ``key``'s evidence shows."""
        self._keep(self._views, key, self._kept_frame(frame, box, label, score, position))

    def best_view(self, key: int) -> tuple[Image, tuple[float, float, float, float]] | None:
        """``key``'s best frame (downscaled) and the box in its pixels."""
        best = self._kept.get(key)
        return None if best is None else (best.image, best.box)

    def stage_view(self, key: int) -> tuple[Image, tuple[float, float, float, float]] | None:
        """What a second stage looks at: ``key``'s nearest view if one was offered, else its best frame."""
        shown = self._shown(key)
        return None if shown is None else (shown.image, shown.box)

    def release(self, key: int) -> None:
        self._kept.pop(key, None)
        self._views.pop(key, None)

    def evidence_for(self, key: int, event: ViolationEvent | None = None) -> Evidence | None:
        """Stored evidence of ``key``'s nearest view when a second stage judges it, else of its best frame.

        ``event``: the event it first goes out with, whose place and camera the annotated frame's
        caption names (``EvidenceConfig.caption``); None: no caption. None when no frame is kept, or
        (with a warning) when storage failed: the event still goes out, only without its pictures.
        """
        best = self._shown(key)
        if best is None:
            return None
        if best.evidence is None:
            try:
                best.evidence = self._render(best, event)
            except StorageError as exc:
                self.failures += 1
                log.warning("event goes out without evidence: %s", exc)
                return None
        return best.evidence

    def _render(self, best: _KeptFrame, event: ViolationEvent | None) -> Evidence:
        cfg = self.config
        drawn = annotate(best.image, best.box, f"{best.label} {best.score:.2f}")
        if cfg.caption and event is not None:
            text = caption_text(best.captured_at, event, self._zone, camera=best.position)
            drawn = with_caption(drawn, text)
        frame_jpeg = encode_jpeg(drawn, cfg.jpeg_quality)
        piece = crop(best.image, best.box, cfg.crop_margin, cfg.max_crop_side)
        crop_jpeg = encode_jpeg(piece, cfg.jpeg_quality)
        # Drawn boxes would teach a retrained model to look for drawn boxes: training needs the
        # frame as the camera saw it.
        clean_jpeg = encode_jpeg(best.image, cfg.jpeg_quality) if cfg.keep_clean_frame else None
        frame_sha = self.store.put(frame_jpeg)
        crop_sha = self.store.put(crop_jpeg)
        clean_sha = self.store.put(clean_jpeg) if clean_jpeg is not None else None
        ref = EvidenceRef(
            frame_sha256=frame_sha,
            frame_bytes=len(frame_jpeg),
            crop_sha256=crop_sha,
            crop_bytes=len(crop_jpeg),
            clean_sha256=clean_sha,
            clean_bytes=len(clean_jpeg) if clean_jpeg is not None else None,
            captured_at=best.captured_at,
            box=best.frame_box,
        )
        return Evidence(
            frame_jpeg=frame_jpeg,
            crop_jpeg=crop_jpeg,
            ref=ref,
            clean_jpeg=clean_jpeg,
            frame_size=best.frame_size,
        )

    def _shown(self, key: int) -> _KeptFrame | None:
        """What a second stage judges and the evidence shows: the nearest view, else the best frame."""
        return self._views.get(key) or self._kept.get(key)

    def _keep(self, frames: dict[int, _KeptFrame], key: int, kept: _KeptFrame) -> None:
        """Hold ``kept`` for ``key`` in ``frames`` (best frames or nearest views): where both offers end."""
        frames[key] = kept

    def _kept_frame(
        self, frame: Frame, box: Sequence[float], label: str, score: float, position: Position | None
    ) -> _KeptFrame:
        small, scaled = self._shrunk(frame, box)
        size = (frame.width, frame.height)
        inside = clip_box(box, frame.width, frame.height)  # what the event schema accepts
        return _KeptFrame(small, scaled, inside, label, score, frame.timestamp, size, position)

    def _shrunk(self, frame: Frame, box: Sequence[float]) -> tuple[Image, tuple[float, float, float, float]]:
        """The frame as kept (downscaled) and ``box`` in its pixels."""
        small, scale = self._downscaled(frame)
        return small, (box[0] * scale, box[1] * scale, box[2] * scale, box[3] * scale)

    def _downscaled(self, frame: Frame) -> tuple[Image, float]:
        # Several tracks often improve on the same frame: shrink it once.
        if self._last_frame is not frame or self._last_small is None:
            self._last_frame = frame
            self._last_small = downscale(frame.image, self.config.max_frame_width)
        return self._last_small

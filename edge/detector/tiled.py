"""Sliced (tiled) inference: one detector run on the whole frame and on a grid of overlapping tiles.

Why: the shipped detectors take a fixed input (streetwatch-det 416x416), so a 1080p patrol frame
is shrunk about 4.6-fold and a far sign or truck of 40 px becomes 9 px, below what the model
finds. A tile of a 2x2 grid is shrunk about half as much. The cost is ``rows x cols`` inferences
per frame for that detector, plus one with ``full_frame`` (5 for a 2x2 grid): enable it only on
the detector whose small objects are missed (``DetectorConfig.tiles``), and keep the tiles'
boxes of the classes that need them only (``tiles.classes``).

Each tile's boxes are moved back to frame pixels. A tile box touching an edge of its tile that is
not the frame's border shows a cut object: it is dropped, as in standard slicing practice (the
overlap holds a small object whole in the neighbouring tile, the full frame holds a large one).
Everything left is merged with the detector's own class-aware NMS (``edge.detector.nms``) at its
configured ``iou``; then a tile box lying mostly inside (``INSIDE``) a full-frame box of its class
is dropped: the full frame saw that object whole, and the tile saw a part of it (a truck's cab, a
sign's lower band) or the same object again, which NMS keeps because their IoU is low.

The wrapper has the same three stages as ``OnnxDetector``, so the pipeline's threads, fusion
(``edge.detector.fusion``) and the tracker see one detector as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge.config import DetectorConfig, TilesConfig
from edge.detections import Detections
from edge.detector.nms import nms
from edge.detector.onnx_detector import check_image
from edge.detector.staged import StagedDetector, as_staged
from edge.geometry import inside_share_matrix
from edge.interfaces import Detector
from streetwatch.errors import ConfigError

#: A tile box this close (pixels) to an inner tile edge counts as cut by it.
EDGE_MARGIN_PX = 2.0
#: A tile box this share of which lies inside a full-frame box of its class is a part of that object.
INSIDE = 0.6


@dataclass(frozen=True)
class Window:
    """A tile in frame pixels, and which of its sides lie inside the frame (not on its border)."""

    x1: int
    y1: int
    x2: int
    y2: int
    inner: tuple[bool, bool, bool, bool]  # left, top, right, bottom


def _spans(size: int, count: int, overlap: float) -> list[tuple[int, int]]:
    """``count`` spans of equal length covering ``[0, size)``, neighbours sharing ``overlap`` of a span."""
    if count == 1:
        return [(0, size)]
    length = int(np.ceil(size / (count - (count - 1) * overlap)))
    length = min(size, length)
    starts = [round(i * (size - length) / (count - 1)) for i in range(count)]
    return [(s, s + length) for s in starts]


def tile_windows(width: int, height: int, tiles: TilesConfig) -> list[Window]:
    """The tiles of a ``width`` x ``height`` frame, row by row.

    >>> [(w.x1, w.x2, w.inner) for w in tile_windows(100, 50, TilesConfig(rows=1, cols=2, overlap=0.25))]
    [(0, 58, (False, False, True, False)), (42, 100, (True, False, False, False))]
    """
    windows = []
    for y1, y2 in _spans(height, tiles.rows, tiles.overlap):
        for x1, x2 in _spans(width, tiles.cols, tiles.overlap):
            windows.append(Window(x1, y1, x2, y2, (x1 > 0, y1 > 0, x2 < width, y2 < height)))
    return windows


def _not_cut(xyxy: NDArray[np.float32], window: Window) -> NDArray[np.bool_]:
    """Rows of ``xyxy`` (frame pixels) that touch none of the window's inner edges."""
    left, top, right, bottom = window.inner
    m = EDGE_MARGIN_PX
    keep = np.ones(len(xyxy), dtype=bool)
    if left:
        keep &= xyxy[:, 0] > window.x1 + m
    if top:
        keep &= xyxy[:, 1] > window.y1 + m
    if right:
        keep &= xyxy[:, 2] < window.x2 - m
    if bottom:
        keep &= xyxy[:, 3] < window.y2 - m
    return keep


def _inside_whole(found: Detections, whole: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Rows lying mostly inside one of the ``whole`` rows (full-frame boxes) of their class."""
    share = inside_share_matrix(found.xyxy, found.xyxy[whole])
    share[found.class_id[:, None] != found.class_id[whole][None, :]] = 0.0
    return share.max(axis=1, initial=0.0) >= INSIDE


@dataclass(frozen=True)
class TiledPrepared:
    """The frame's tiles, each with what the wrapped detector prepared of it."""

    windows: list[Window]
    prepared: list[Any]


class TiledDetector:
    """A detector run on the whole frame (``full_frame``) and on overlapping tiles, merged by NMS."""

    def __init__(self, detector: Detector | StagedDetector, tiles: TilesConfig, iou: float) -> None:
        self.inner = as_staged(detector)
        self.info = self.inner.info
        unknown = sorted(set(tiles.classes or ()) - set(self.info.class_names))
        if unknown:
            raise ConfigError(
                f"tiles.classes {unknown} are not classes of model {self.info.name}; it has: "
                f"{', '.join(self.info.class_names[:20])}{' ...' if len(self.info.class_names) > 20 else ''}"
            )
        self.tiles = tiles
        self.iou = iou

    @property
    def providers(self) -> list[str]:
        """The wrapped detector's providers (the pipeline asks whether it runs on a GPU)."""
        return list(getattr(self.inner, "providers", ["CPUExecutionProvider"]))

    def prepare(self, image: NDArray[np.uint8]) -> TiledPrepared:
        height, width = check_image(image).shape[:2]
        windows = tile_windows(width, height, self.tiles)
        if self.tiles.full_frame:
            windows.insert(0, Window(0, 0, width, height, (False, False, False, False)))
        crops = [np.ascontiguousarray(image[w.y1 : w.y2, w.x1 : w.x2]) for w in windows]
        prepared = [self.inner.prepare(crop) for crop in crops]
        return TiledPrepared(windows, prepared)

    def infer(self, prepared: TiledPrepared) -> list[Any]:
        return [self.inner.infer(p) for p in prepared.prepared]

    def finish(self, outputs: Sequence[Any], prepared: TiledPrepared) -> Detections:
        parts = []
        from_tile: list[NDArray[np.bool_]] = []
        for number, (window, output, tile) in enumerate(
            zip(prepared.windows, outputs, prepared.prepared, strict=True)
        ):
            found = self.inner.finish(output, tile)
            xyxy = found.xyxy + np.asarray([window.x1, window.y1, window.x1, window.y1], dtype=np.float32)
            found = Detections(xyxy, found.confidence, found.class_id, found.class_name, found.detector_index)
            kept = _not_cut(found.xyxy, window)
            if number > 0 and self.tiles.classes is not None:  # tiles are for the classes named
                kept &= np.isin(found.class_name, self.tiles.classes)
            found = found[kept]
            parts.append(found)
            from_tile.append(np.full(len(found), number > 0 or not self.tiles.full_frame, dtype=bool))
        merged = Detections.merge(parts)
        tiled = np.concatenate(from_tile) if from_tile else np.zeros(0, dtype=bool)
        keep = nms(merged.xyxy, merged.confidence, merged.class_id, self.iou)
        merged, tiled = merged[keep], tiled[keep]
        return merged[~(tiled & _inside_whole(merged, ~tiled))]

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        prepared = self.prepare(image)
        return self.finish(self.infer(prepared), prepared)


def with_tiles(detector: Detector | StagedDetector, config: DetectorConfig) -> Detector | StagedDetector:
    """``detector`` tiled as ``config.tiles`` says; unchanged without tiles."""
    if config.tiles is None:
        return detector
    return TiledDetector(detector, config.tiles, config.iou)

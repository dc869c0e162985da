"""Tiled (sliced) inference: tile boxes back in frame pixels, cut boxes dropped, config checked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray
from pydantic import ValidationError

from edge.config import DetectorConfig, DeviceConfig, FusionConfig, TilesConfig
from edge.detections import Detections
from edge.detector.fusion import BoxFusion
from edge.detector.staged import as_staged
from edge.detector.tiled import TiledDetector, tile_windows
from edge.geometry import iou_matrix
from edge.interfaces import Detector, ModelInfo
from edge.startup import load_detectors, reporter_of
from streetwatch.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "streetwatch-det" / "streetwatch-det.onnx"
SIGN_PHOTO = REPO / "datasets" / "samples" / "images" / "signboards_vdl_IMG_0091.jpg"

Box = tuple[float, float, float, float]


class WhiteBlobs:
    """A detector double: every white rectangle is a ``blob``, at its exact pixels.

    Like a real model at a fixed input it misses what is small after the image is shrunk to
    ``input_side``: a blob whose shorter side would be under ``min_side`` input pixels.
    """

    def __init__(self, input_side: int = 10_000, min_side: float = 4.0, index: int = 0) -> None:
        self.info = ModelInfo("white-blobs", "1", ("blob",), (input_side, input_side))
        self.min_side = min_side
        self.index = index
        self.calls = 0

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        self.calls += 1
        scale = min(1.0, self.info.input_size[0] / max(image.shape[:2]))
        mask = (image.min(axis=2) == 255).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = [
            (float(x), float(y), float(x + w), float(y + h))
            for x, y, w, h, _ in stats[1:count].tolist()
            if min(w, h) * scale >= self.min_side
        ]
        n = len(boxes)
        return Detections(
            xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
            confidence=np.full(n, 0.9, dtype=np.float32),
            class_id=np.zeros(n, dtype=np.int64),
            class_name=np.asarray(["blob"] * n, dtype=np.str_).reshape(n),
            detector_index=np.full(n, self.index, dtype=np.int64),
        )


def frame_with(*boxes: Box, size: tuple[int, int] = (300, 400)) -> NDArray[np.uint8]:
    image = np.full((*size, 3), 90, dtype=np.uint8)
    for x1, y1, x2, y2 in boxes:
        image[int(y1) : int(y2), int(x1) : int(x2)] = 255
    return image


def tiled(detector: Detector, full_frame: bool = True, **grid: object) -> TiledDetector:
    settings: dict[str, object] = {"rows": 2, "cols": 2, "overlap": 0.2, "full_frame": full_frame, **grid}
    return TiledDetector(detector, TilesConfig.model_validate(settings), iou=0.45)


def boxes_of(found: Detections) -> list[Box]:
    rows = [[round(float(v), 1) for v in row] for row in found.xyxy]
    return sorted((x1, y1, x2, y2) for x1, y1, x2, y2 in rows)


def test_tiles_cover_the_frame_and_overlap_their_neighbours() -> None:
    windows = tile_windows(400, 300, TilesConfig(rows=2, cols=2, overlap=0.2))
    assert [(w.x1, w.y1, w.x2, w.y2) for w in windows] == [
        (0, 0, 223, 167),
        (177, 0, 400, 167),
        (0, 133, 223, 300),
        (177, 133, 400, 300),
    ]
    assert [w.inner for w in windows] == [
        (False, False, True, True),
        (True, False, False, True),
        (False, True, True, False),
        (True, True, False, False),
    ]


def test_a_box_found_in_a_tile_comes_back_in_frame_pixels() -> None:
    blob = (300.0, 220.0, 340.0, 260.0)  # in the bottom-right tile only
    found = tiled(WhiteBlobs(), full_frame=False).detect(frame_with(blob))
    assert boxes_of(found) == [blob]
    assert found.detector_index.tolist() == [0]


def test_a_box_cut_by_an_inner_tile_edge_is_dropped_for_the_whole_one_in_the_next_tile() -> None:
    # Tile 0 ends at x=223 and cuts the blob to 185..223 (IoU 0.4 with the whole: NMS would keep
    # both); tile 1 (from x=177) holds it whole.
    blob = (185.0, 20.0, 280.0, 60.0)
    found = tiled(WhiteBlobs(), full_frame=False).detect(frame_with(blob))
    assert boxes_of(found) == [blob]


def test_a_box_on_the_frame_border_is_kept() -> None:
    blob = (0.0, 0.0, 30.0, 25.0)  # touches the frame's left and top border, not a tile's inner edge
    found = tiled(WhiteBlobs(), full_frame=False).detect(frame_with(blob))
    assert boxes_of(found) == [blob]


def test_an_object_larger_than_the_overlap_comes_from_the_full_frame_only() -> None:
    big = (100.0, 80.0, 300.0, 220.0)  # crosses every inner tile edge
    detector = WhiteBlobs()
    assert boxes_of(tiled(detector, full_frame=True).detect(frame_with(big))) == [big]
    assert detector.calls == 5  # the whole frame and 4 tiles
    assert len(tiled(WhiteBlobs(), full_frame=False).detect(frame_with(big))) == 0  # only cut pieces


class PartsInTiles(WhiteBlobs):
    """Sees a large blob whole in the full frame and, in a tile (a crop), only its left quarter."""

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        found = super().detect(image)
        if image.shape[:2] == (300, 400):
            return found
        part = found.xyxy.copy()
        part[:, 2] = part[:, 0] + (part[:, 2] - part[:, 0]) / 4  # IoU 0.25 with the whole: NMS keeps both
        return Detections(part, found.confidence, found.class_id, found.class_name, found.detector_index)


def test_a_part_of_an_object_seen_in_a_tile_gives_way_to_the_whole_from_the_full_frame() -> None:
    truck = (20.0, 20.0, 160.0, 100.0)  # whole in the top-left tile; the tile sees its cab only
    found = tiled(PartsInTiles()).detect(frame_with(truck))
    assert boxes_of(found) == [truck]


def test_a_small_object_missed_at_the_fixed_input_is_found_in_a_tile() -> None:
    small = (50.0, 40.0, 62.0, 52.0)  # 12 px: 3.2 px at a 100 px input, 5.4 px in a 223 px tile
    detector = WhiteBlobs(input_side=100, min_side=4.0)
    image = frame_with(small, (250.0, 150.0, 330.0, 230.0))
    assert boxes_of(detector.detect(image)) == [(250.0, 150.0, 330.0, 230.0)]
    assert boxes_of(tiled(detector).detect(image)) == [small, (250.0, 150.0, 330.0, 230.0)]


class TwoKinds(WhiteBlobs):
    """White blobs, and grey (200) blobs of a second class ``pile``."""

    def __init__(self, input_side: int) -> None:
        super().__init__(input_side=input_side)
        self.info = ModelInfo("two-kinds", "1", ("blob", "pile"), (input_side, input_side))

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        piles = super().detect(np.where(image == 200, 255, 0).astype(np.uint8))
        names = np.asarray(["pile"] * len(piles))
        piles = Detections(piles.xyxy, piles.confidence, piles.class_id + 1, names)
        return Detections.merge([super().detect(image), piles])


def test_tiles_keep_only_the_classes_named_and_the_full_frame_keeps_all() -> None:
    blob, pile = (50.0, 40.0, 62.0, 52.0), (300.0, 220.0, 312.0, 232.0)  # both only seen in tiles
    image = frame_with(blob)
    image[220:232, 300:312] = 200
    detector = TwoKinds(input_side=100)
    assert len(detector.detect(image)) == 0
    assert boxes_of(tiled(detector).detect(image)) == [blob, pile]
    assert boxes_of(tiled(detector, classes=["blob"]).detect(image)) == [blob]


def test_tiles_classes_the_model_lacks_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"tiles.classes \['bin'\] are not classes of model two-kinds"):
        tiled(TwoKinds(input_side=100), classes=["bin", "pile"])


def test_tiled_boxes_take_part_in_fusion_like_any_detector() -> None:
    near_tile_car = (300.0, 220.0, 340.0, 260.0)
    ours = tiled(WhiteBlobs(index=1), full_frame=False)
    assert as_staged(ours) is ours  # the pipeline runs its three stages itself
    prepared = ours.prepare(frame_with(near_tile_car))
    found = ours.finish(ours.infer(prepared), prepared)
    other = Detections(
        xyxy=np.asarray([[301, 221, 341, 259]], dtype=np.float32),
        confidence=np.asarray([0.5], dtype=np.float32),
        class_id=np.asarray([2]),
        class_name=np.asarray(["blob"]),
        detector_index=np.asarray([0]),
    )
    fusion = BoxFusion(FusionConfig(detectors=[0, 1], report_as=1, classes={"blob": ["blob"]}, score="max"))
    fused = fusion.fuse(Detections.merge([found, other]))
    assert len(fused) == 1 and fused.detector_index.tolist() == [1]
    assert float(fused.confidence[0]) == pytest.approx(0.9)


def test_the_box_loads_a_detector_tiled_only_where_its_config_says() -> None:
    config = DeviceConfig.model_validate(
        {
            "device_id": "box-1",
            "source": {"kind": "images", "uri": "."},
            "detectors": [{"model": "a.onnx"}, {"model": "b.onnx", "tiles": {"rows": 3, "cols": 2}}],
            "class_map": [{"detector_class": "blob", "violation_type": "garbage_overflow"}],
        }
    )
    loaded = load_detectors(config, 1, reporter_of(None), lambda cfg, index, threads: WhiteBlobs(index=index))
    assert isinstance(loaded[0], WhiteBlobs)
    assert isinstance(loaded[1], TiledDetector) and len(tile_windows(90, 90, loaded[1].tiles)) == 6


def test_check_config_says_which_detector_is_tiled_and_what_it_costs() -> None:
    from edge.config_check import ConfigReport, describe

    config = DeviceConfig.model_validate(
        {
            "device_id": "box-1",
            "source": {"kind": "images", "uri": "."},
            "detectors": [{"model": "a.onnx"}, {"model": "b.onnx", "tiles": {"rows": 2, "cols": 3}}],
            "class_map": [{"detector_class": "blob", "violation_type": "garbage_overflow"}],
        }
    )
    lines = [line for line in describe(config, ConfigReport()) if line.startswith("detector")]
    assert "tiled" not in lines[0]
    assert lines[1].endswith("tiled 2x3, overlap 0.2 + full frame: 7 runs/frame)")


@pytest.mark.parametrize(
    ("tiles", "message"),
    [
        ({"rows": 1, "cols": 1}, "a 1x1 grid is the whole frame"),
        ({"rows": 0}, "rows"),
        ({"cols": 9}, "cols"),
        ({"overlap": 0.6}, "overlap"),
        ({"overlap": -0.1}, "overlap"),
        ({"colums": 2}, "colums"),
        ({"classes": ["sign"], "full_frame": False}, "tiles.classes needs full_frame: true"),
        ({"classes": []}, "classes"),
    ],
)
def test_bad_tiles_settings_are_refused_naming_the_setting(tiles: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DetectorConfig.model_validate({"model": "m.onnx", "tiles": tiles})


def test_tiles_find_a_far_sign_the_shipped_model_misses_at_its_fixed_input() -> None:
    """A shop front shrunk to 360 px in a 1080p frame (a far sign, as a patrol camera sees it)."""
    from edge.detector import load_detector

    if not MODEL.is_file() or not SIGN_PHOTO.is_file():
        pytest.skip("the shipped model or the sample photo is absent")
    cfg = DetectorConfig(model=str(MODEL), conf=0.25, providers=["CPUExecutionProvider"])
    detector = load_detector(cfg, 0, threads=1)
    photo = np.asarray(cv2.imread(str(SIGN_PHOTO)), dtype=np.uint8)
    near = detector.detect(photo)
    near = near[near.class_name == "signboard"]
    sign = near.xyxy[int(np.argmax(near.confidence))]  # the sign, as the model sees it up close
    scale = 360 / max(photo.shape[:2])
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((1080, 1920, 3), 114, dtype=np.uint8)
    frame[80 : 80 + small.shape[0], 100 : 100 + small.shape[1]] = small
    far_sign = sign * scale + np.asarray([100, 80, 100, 80], dtype=np.float32)

    def overlap(found: Detections) -> float:
        signs = found[found.class_name == "signboard"]
        return float(iou_matrix(far_sign[None], signs.xyxy).max(initial=0.0))

    assert overlap(detector.detect(frame)) < 0.3
    assert overlap(TiledDetector(detector, TilesConfig(), cfg.iou).detect(frame)) > 0.6


def test_a_model_update_keeps_the_detector_tiled() -> None:
    from datetime import datetime, timezone

    from edge.detector import load_detector
    from edge.frames import Frame
    from edge.updates.probe import probe_model

    if not MODEL.is_file() or not SIGN_PHOTO.is_file():
        pytest.skip("the shipped model or the sample photo is absent")
    cfg = DetectorConfig(model=str(MODEL), conf=0.25, providers=["CPUExecutionProvider"], tiles=TilesConfig())
    config = DeviceConfig.model_validate(
        {
            "device_id": "box-1",
            "source": {"kind": "images", "uri": "."},
            "detectors": [cfg.model_dump()],
            "class_map": [{"detector_class": "signboard", "violation_type": "illegal_signboard"}],
        }
    )
    running = TiledDetector(load_detector(cfg, 0, threads=1), TilesConfig(), cfg.iou)
    image = np.asarray(cv2.imread(str(SIGN_PHOTO)), dtype=np.uint8)
    frame = Frame(image=image, timestamp=datetime(2026, 1, 1, tzinfo=timezone.utc), index=0, source="test")
    new, report = probe_model(
        MODEL, config=config, index=0, name="det", version="2", old=running, frames=[frame], max_drift=0.6
    )
    assert isinstance(new, TiledDetector) and new.tiles == TilesConfig()
    assert report.new_detections == report.old_detections > 0 and report.drift == 0.0


class FarTrucks(WhiteBlobs):
    """White blobs reported as trucks, missed below 4 px at a 100 px input (a far truck)."""

    def __init__(self, index: int = 0) -> None:
        super().__init__(input_side=100, index=index)
        self.info = ModelInfo("far-trucks", "1", ("truck",), (100, 100))

    def detect(self, image: NDArray[np.uint8]) -> Detections:
        found = super().detect(image)
        names = np.asarray(["truck"] * len(found))
        return Detections(found.xyxy, found.confidence, found.class_id, names, found.detector_index)


@pytest.mark.parametrize(("tiles", "reported"), [(None, 0), ({"rows": 2, "cols": 2}, 1)])
def test_the_box_reports_a_far_truck_only_when_its_detector_is_tiled(
    tmp_path: Path, tiles: dict[str, object] | None, reported: int
) -> None:
    from edge.pipeline import from_config
    from edge.sinks.jsonl import JsonlSink
    from tests.edge.pipeline_fakes import FixedLocator, ListSource, device_config

    raw = device_config(tmp_path, min_box_area_px=0).model_dump()
    raw["detectors"][0]["tiles"] = tiles
    config = DeviceConfig.model_validate(raw)  # validated as a file would be
    source = ListSource(count=6)
    source.image = frame_with((250.0, 150.0, 262.0, 162.0), size=(240, 320))  # 12 px: 3.75 px at the input
    pipeline = from_config(
        config,
        sink=JsonlSink(tmp_path / "events.jsonl"),
        locator=FixedLocator(),
        source=source,
        detector_loader=lambda cfg, index, threads: FarTrucks(index),
    )
    pipeline.run()
    events = tmp_path / "events.jsonl"
    lines = events.read_text().splitlines() if events.exists() else []
    assert sum('"lifecycle":"new"' in line.replace(" ", "") for line in lines) == reported

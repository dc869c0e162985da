"""The shipped YOLOX-nano on real street photos, compared with the human labels (IoU based)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.detections import Detections
from edge.detector import load_detector
from edge.geometry import box_iou_one_to_many
from edge.interfaces import Detector
from streetwatch.paths import models_dir

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
VEHICLES = SHARED / "vehicles" / "val"
TRUCK_LABEL = 2  # vehicles/: 0 car, 1 motor, 2 truck, 3 bus
MODEL = models_dir() / "yolox_nano" / "yolox_nano.onnx"

pytestmark = pytest.mark.skipif(not VEHICLES.is_dir(), reason="needs ../shared/data/vehicles")


@pytest.fixture(scope="module")
def detector():
    return load_detector(DetectorConfig(model=str(MODEL), conf=0.25), index=2)


def labelled_boxes(image_path: Path, width: int, height: int, label: int) -> np.ndarray:
    rows = np.loadtxt(VEHICLES / "labels" / f"{image_path.stem}.txt", ndmin=2)
    rows = rows[rows[:, 0] == label]
    cx, cy, w, h = rows[:, 1] * width, rows[:, 2] * height, rows[:, 3] * width, rows[:, 4] * height
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)


def images_with_trucks(limit: int) -> list[Path]:
    found = []
    for path in sorted((VEHICLES / "images").iterdir()):
        rows = np.loadtxt(VEHICLES / "labels" / f"{path.stem}.txt", ndmin=2)
        if len(rows) and (rows[:, 0] == TRUCK_LABEL).any():
            found.append(path)
        if len(found) == limit:
            break
    return found


def matched(truth: np.ndarray, detections: Detections, iou: float = 0.5) -> int:
    if not len(detections):
        return 0
    return sum(bool(box_iou_one_to_many(t, detections.xyxy).max() >= iou) for t in truth)


def test_model_describes_itself_through_its_sidecar(detector):
    assert isinstance(detector, Detector)
    assert detector.info.name == "yolox_nano_coco"
    assert detector.info.input_size == (416, 416)
    assert len(detector.info.class_names) == 80
    assert detector.info.class_names[7] == "truck"
    assert detector.backend.name == "yolox"


def test_finds_the_labelled_trucks_in_traffic_photos(detector):
    truth_total = vehicle_hits = truck_hits = 0
    for path in images_with_trucks(12):
        image = cv2.imread(str(path))
        truth = labelled_boxes(path, image.shape[1], image.shape[0], TRUCK_LABEL)
        found = detector.detect(image)
        truth_total += len(truth)
        vehicle_hits += matched(truth, found[np.isin(found.class_name, ["car", "truck", "bus"])])
        truck_hits += matched(truth, found[found.class_name == "truck"])
    assert truth_total >= 20
    # A COCO nano model on elevated traffic views: most trucks are found as a vehicle, many as 'truck'.
    assert vehicle_hits / truth_total >= 0.4, (vehicle_hits, truth_total)
    assert truck_hits / truth_total >= 0.2, (truck_hits, truth_total)


def test_detections_are_in_original_pixels_whatever_the_aspect(detector):
    path = images_with_trucks(1)[0]
    image = cv2.imread(str(path))
    h, w = image.shape[:2]
    wider = np.full((h, w + w // 2, 3), 114, dtype=np.uint8)
    wider[:, :w] = image  # the same scene, grey band on the right: a different letterbox
    plain, padded = detector.detect(image), detector.detect(wider)
    # Objects big enough that the coarser letterbox of the wider frame does not change the box much.
    strong = plain[(plain.confidence >= 0.4) & (plain.xyxy[:, 2] - plain.xyxy[:, 0] >= 30)]
    assert len(strong) >= 1
    assert (padded.xyxy[:, 2] <= w + w // 2).all() and (padded.xyxy[:, 3] <= h).all()
    for box, name in zip(strong.xyxy, strong.class_name, strict=True):
        same = padded[padded.class_name == name]
        assert len(same) and box_iou_one_to_many(box, same.xyxy).max() >= 0.6, name


def test_split_stages_equal_detect_and_fill_every_field(detector):
    image = cv2.imread(str(images_with_trucks(1)[0]))
    prepared = detector.prepare(image)
    assert prepared.tensor.shape == (1, 3, 416, 416)
    staged = detector.finish(detector.infer(prepared), prepared)
    direct = detector.detect(image)
    np.testing.assert_array_equal(staged.xyxy, direct.xyxy)
    assert len(direct) > 0
    assert (direct.confidence >= 0.25).all()
    assert (direct.detector_index == 2).all()
    assert set(direct.class_name) <= set(detector.info.class_names)
    assert [detector.info.class_names[i] for i in direct.class_id] == direct.class_name.tolist()


def test_keep_classes_filters_by_name():
    only = load_detector(DetectorConfig(model=str(MODEL), conf=0.1, keep_classes=["truck", "bus"]))
    everything = load_detector(DetectorConfig(model=str(MODEL), conf=0.1))
    image = cv2.imread(str(images_with_trucks(1)[0]))
    kept, full = only.detect(image), everything.detect(image)
    assert len(kept) > 0 and len(full) > len(kept)
    assert set(kept.class_name) <= {"truck", "bus"}
    assert len(kept) == int(np.isin(full.class_name, ["truck", "bus"]).sum())


@pytest.mark.parametrize(
    ("image", "shown"),
    [
        (np.zeros((10, 10), dtype=np.uint8), r"\(10, 10\)"),
        (np.zeros((10, 10, 3), dtype=np.float32), "float32"),
        (np.zeros((10, 10, 4), dtype=np.uint8), r"\(10, 10, 4\)"),
        (np.zeros((0, 10, 3), dtype=np.uint8), r"\(0, 10, 3\)"),
    ],
)
def test_a_wrong_frame_is_a_value_error_naming_it(detector, image, shown):
    with pytest.raises(ValueError, match=shown):
        detector.detect(image)

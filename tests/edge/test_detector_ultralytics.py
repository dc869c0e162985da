"""Our decoding of ultralytics ONNX exports against ultralytics' own ``predict`` on the same file.

The models are built from ``yolov8n.yaml`` (no download) with random weights, made to give
varied boxes: batch-norm statistics from one pass over the test images (fresh ones let the
activations vanish) and a class bias that lets dozens of scores pass 0.25 without saturating.
Decoding does not care whether the boxes mean anything; it must give the boxes ultralytics gives.
"""

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.config import DetectorConfig
from edge.detector import load_detector
from edge.detector.letterbox import letterbox

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
IMAGES = [
    SHARED / "signboards" / "val" / "images" / "vdl_IMG_0001.jpg",  # 642×800, portrait
    SHARED / "vehicles" / "val" / "images" / "vnv_101_jpg.jpg",  # 640×640
]
IMGSZ, CONF, IOU = 160, 0.25, 0.45

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(p.is_file() for p in IMAGES), reason="needs ../shared/data images"),
]


def _confident_random_yolov8():
    torch = pytest.importorskip("torch")
    ultralytics = pytest.importorskip("ultralytics")
    torch.manual_seed(0)
    model = ultralytics.YOLO("yolov8n.yaml")
    net = model.model
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average: one batch sets the statistics
    # Statistics of exactly the inputs predicted below, so no activation saturates on them.
    batch = np.stack(
        [letterbox(cv2.imread(str(p)), (IMGSZ, IMGSZ), center=True)[0][..., ::-1] for p in IMAGES]
    )
    net.train()
    with torch.no_grad():
        net(torch.from_numpy(batch.transpose(0, 3, 1, 2) / 255.0).float())
    net.eval()
    for branch in net.model[
        -1
    ].cv3:  # class logits ~ -1.5 ± 0.3: dozens of boxes over CONF on each image, none near 1.0
        branch[-1].bias.data.fill_(-1.5)
    return model


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    """{'plain': path, 'nms': path}: the same random network exported without and with NMS."""
    folder = tmp_path_factory.mktemp("ultralytics_exports")
    model = _confident_random_yolov8()
    paths = {}
    cwd = os.getcwd()
    os.chdir(folder)  # a model built from YAML is exported into the working directory
    try:
        for kind, nms in (("plain", False), ("nms", True)):
            with warnings.catch_warnings():
                # Tracing warnings (tensor-to-bool in the head) come with any ultralytics export.
                warnings.simplefilter("ignore")
                exported = Path(
                    model.export(format="onnx", imgsz=IMGSZ, nms=nms, simplify=False, verbose=False)
                )
            paths[kind] = exported.rename(folder / f"yolov8n_{kind}.onnx")
    finally:
        os.chdir(cwd)
    return paths


def _ultralytics_predict(model_path: Path, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ultralytics import YOLO

    result = YOLO(str(model_path), task="detect").predict(
        image, imgsz=IMGSZ, conf=CONF, iou=IOU, verbose=False
    )
    boxes = result[0].boxes
    return boxes.xyxy.numpy(), boxes.conf.numpy(), boxes.cls.numpy().astype(np.int64)


def _unmatched(ours, reference, box_tol: float = 0.5, score_tol: float = 1e-4) -> list[int]:
    """Our rows without a distinct reference row of the same class, score and box (order-free:
    near-equal scores may come out in either order)."""
    ref_xyxy, ref_conf, ref_cls = reference
    free = np.ones(len(ref_conf), dtype=bool)
    missing = []
    for i, (box, score, cls) in enumerate(zip(ours.xyxy, ours.confidence, ours.class_id, strict=True)):
        close = free & (ref_cls == cls) & (np.abs(ref_conf - score) <= score_tol)
        close &= np.abs(ref_xyxy - box).max(axis=1) <= box_tol
        if close.any():
            free[np.flatnonzero(close)[0]] = False
        else:
            missing.append(i)
    return missing


@pytest.mark.parametrize(("kind", "decoder"), [("plain", "yolov8"), ("nms", "yolov8_end2end")])
def test_same_boxes_as_ultralytics_predict(exports, kind, decoder):
    detector = load_detector(DetectorConfig(model=str(exports[kind]), conf=CONF, iou=IOU))
    assert detector.backend.name == decoder  # chosen by 'auto' from metadata and output shape
    assert detector.info.input_size == (IMGSZ, IMGSZ)
    assert len(detector.info.class_names) == 80
    for path in IMAGES:
        image = cv2.imread(str(path))
        ours = detector.detect(image)
        reference = _ultralytics_predict(exports[kind], image)
        assert len(reference[1]) >= 3, "the random model must give something to compare"
        assert len(ours) == len(reference[1]), path.name
        assert _unmatched(ours, reference) == [], path.name
        assert (ours.xyxy[:, [0, 2]] <= image.shape[1]).all() and (
            ours.xyxy[:, [1, 3]] <= image.shape[0]
        ).all()


def test_metadata_of_an_ultralytics_export_is_read(exports):
    detector = load_detector(DetectorConfig(model=str(exports["plain"])))
    import ultralytics

    assert detector.info.version == ultralytics.__version__
    assert detector.info.name == "yolov8n_plain"
    assert detector.info.class_names[:2] == ("0", "1")  # a YAML-built model names classes by number

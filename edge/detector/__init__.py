"""Object detection on the edge: ONNX models behind the ``Detector`` protocol.

Public API::

    from edge.detector import load_detector
    detector = load_detector(DetectorConfig(model="models/yolox_nano/yolox_nano.onnx"), index=0)
    detections = detector.detect(image_bgr)            # one call, or the three stages:
    prepared = detector.prepare(image_bgr)             # letterbox + tensor (OpenCV)
    outputs = detector.infer(prepared)                 # onnxruntime, releases the GIL
    detections = detector.finish(outputs, prepared)    # decode + NMS + boxes to image pixels

Decoders (``DetectorConfig.decoder``): ``yolov8`` (ultralytics YOLOv8/YOLO11/yolov5u),
``yolov8_end2end`` (exports with NMS inside), ``yolox``; ``auto`` picks by metadata and
output shape. A model without metadata can carry a sidecar ``<model>.yaml`` (see
``edge.detector.metadata``).
"""

from edge.detector.backends import BACKENDS, Backend, DecodeParams, choose_backend
from edge.detector.decode import RawDetections, decode_end2end, decode_yolov8, decode_yolox
from edge.detector.letterbox import LetterboxMeta, boxes_to_original, letterbox
from edge.detector.metadata import ModelMetadata, load_class_names_file
from edge.detector.nms import nms
from edge.detector.onnx_detector import OnnxDetector, Prepared, check_image, load_detector

__all__ = [
    "BACKENDS",
    "Backend",
    "DecodeParams",
    "LetterboxMeta",
    "ModelMetadata",
    "OnnxDetector",
    "Prepared",
    "RawDetections",
    "boxes_to_original",
    "check_image",
    "choose_backend",
    "decode_end2end",
    "decode_yolov8",
    "decode_yolox",
    "letterbox",
    "load_class_names_file",
    "load_detector",
    "nms",
]

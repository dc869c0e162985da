"""``streetwatch detect``: run one detection model on image files, for spot checks and evaluation.

With ``--json`` each readable image gives exactly one line on stdout::

    {"image": "<path>", "width": W, "height": H,
     "detections": [{"class": "<name>", "score": S, "box": [x1, y1, x2, y2]}]}

Boxes are in original-image pixels. An unreadable image (corrupt, truncated,
missing) gets a warning on stderr and no stdout line; the other images are
still processed and the exit code is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streetwatch.paths import models_dir

if TYPE_CHECKING:
    from edge.detections import Detections

DEFAULT_MODEL = models_dir() / "yolox_nano" / "yolox_nano.onnx"
DECODERS = ("auto", "yolov8", "yolov8_end2end", "yolox")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="Run a detection model on images (files or folders) and print what it finds.",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="Image files and/or folders of images.")
    parser.add_argument(
        "--model",
        default=str(DEFAULT_MODEL),
        help="ONNX model (default: the shipped YOLOX-nano, COCO classes).",
    )
    parser.add_argument("--conf", type=float, default=0.25, help="Minimum score (default 0.25).")
    parser.add_argument(
        "--iou", type=float, default=0.45, help="IoU threshold of class-aware NMS (default 0.45)."
    )
    parser.add_argument("--imgsz", type=int, default=None, help="Input size for models with a dynamic input.")
    parser.add_argument("--decoder", choices=DECODERS, default="auto", help="Output decoder (default: auto).")
    parser.add_argument(
        "--class-names",
        metavar="FILE",
        default=None,
        help="Class names for models without metadata: YAML list, names: mapping, or a text file.",
    )
    parser.add_argument("--json", action="store_true", help="One JSON object per image per line.")
    parser.set_defaults(handler=run_detect)


def detections_json(detections: Detections) -> list[dict[str, Any]]:
    return [
        {"class": str(name), "score": round(float(score), 4), "box": [round(float(v), 2) for v in box]}
        for name, score, box in zip(
            detections.class_name, detections.confidence, detections.xyxy, strict=True
        )
    ]


def _table(path: str, width: int, height: int, detections: Detections) -> str:
    lines = [f"{path}  {width}x{height}  {len(detections)} detection(s)"]
    for d in detections_json(detections):
        x1, y1, x2, y2 = d["box"]
        lines.append(f"  {d['class']:<16} {d['score']:.3f}  {x1:8.1f} {y1:8.1f} {x2:8.1f} {y2:8.1f}")
    return "\n".join(lines)


def run_detect(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from edge.config import DetectorConfig
    from edge.detector import load_class_names_file, load_detector
    from edge.detector.image_files import expand_image_paths, read_image
    from streetwatch.errors import ConfigError, SourceError

    try:
        config = DetectorConfig(
            model=args.model,
            decoder=args.decoder,
            conf=args.conf,
            iou=args.iou,
            imgsz=args.imgsz,
            class_names=list(load_class_names_file(args.class_names)) if args.class_names else None,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid detect options: {problems}") from exc
    found = expand_image_paths(args.paths)
    failed = len(found.missing)
    for path in found.missing:
        why = "is neither an image file nor a folder" if Path(path).exists() else "does not exist"
        print(f"streetwatch detect: warning: {path} {why}", file=sys.stderr)
    if not found.images:
        print("streetwatch detect: error: no images found in " + ", ".join(args.paths), file=sys.stderr)
        return 1
    detector = load_detector(config)
    for path in found.images:
        try:
            image = read_image(path)
        except SourceError as exc:
            print(f"streetwatch detect: warning: skipped: {exc}", file=sys.stderr)
            failed += 1
            continue
        detections = detector.detect(image)
        height, width = image.shape[:2]
        if args.json:
            record = {
                "image": str(path),
                "width": width,
                "height": height,
                "detections": detections_json(detections),
            }
            print(json.dumps(record), flush=True)
        else:
            print(_table(str(path), width, height, detections), flush=True)
    if failed:
        print(f"streetwatch detect: {failed} path(s) could not be read", file=sys.stderr)
    return 1 if failed else 0

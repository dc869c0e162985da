"""What a box and its detectors put on each photo of a split: the labelling passes' proposals.

For every validation photo: its source labels, the ``illegal_signboard``, ``unsealed_truck`` and
``garbage_overflow`` reports of a box config run as ``bench.case_precision`` runs it, and the
``signboard``, ``truck``, ``garbage`` and ``overflow`` boxes each of the config's detectors finds
alone at confidence ``--conf`` (0.1, far below any shipped threshold). A garbage photo is completed
for signs or trucks when any of these is on it, so this file also fixes which photos those
completions cover (the garbage photos are completed for piles whole; ``--set garbage``).

On the train split (``--split train``) the box's reports are left out (``--no-reports``): they
are only there so that a bench run's every report lies on a completed photo, and the bench scores
the val split alone.

    nice -n 10 python -m training.label_completion.proposals work/proposals.json
    nice -n 10 python -m training.label_completion.proposals work/train.json --split train --no-reports
    nice -n 10 python -m training.label_completion.proposals work/garbage.json --set garbage
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from bench.case_precision import DEFAULT_CONFIG, SETS, SHARED, load_photos, run_config
from edge.config import load_config
from edge.detector.onnx_detector import load_detector

#: The detector classes completed, and the violation type each one's reports carry.
CLASSES = {
    "signboard": "illegal_signboard",
    "truck": "unsealed_truck",
    "garbage": "garbage_overflow",
    "overflow": "garbage_overflow",
}


def collect(
    config_path: Path,
    data: Path,
    conf: float,
    split: str = "val",
    reports: bool = True,
    sets: Sequence[str] = tuple(SETS),
) -> dict[str, dict[str, list[list[object]]]]:
    """Per photo ``<set>/<file>`` of ``sets``: ``labels`` [class, x1..y2], ``reports`` [type, x1..y2]
    (empty without ``reports``) and ``props`` [detector index, class, score, x1..y2]."""
    config = load_config(config_path)
    photos = load_photos(data, list(sets), None, street_trucks=split == "val", split=split)
    out: dict[str, dict[str, list[list[object]]]] = {
        p.name: {"labels": [[lab.class_name, *lab.box] for lab in p.labels], "reports": [], "props": []}
        for p in photos
    }
    run_results = run_config(config, photos, 4).results if reports else []
    for result in run_results:
        for report in result.reports:
            if report.violation_type.value in CLASSES.values():
                out[result.photo]["reports"].append([report.violation_type.value, *report.box])
    detectors = [
        load_detector(d.model_copy(update={"conf": conf}), i) for i, d in enumerate(config.detectors)
    ]
    for photo in photos:
        image = cv2.imread(str(photo.path))
        if image is None:
            print(f"proposals: {photo.path} cannot be read; skipped", file=sys.stderr)
            continue
        for index, detector in enumerate(detectors):
            found = detector.detect(np.asarray(image, dtype=np.uint8))
            for box, score, name in zip(found.xyxy, found.confidence, found.class_name, strict=True):
                if str(name) in CLASSES:
                    out[photo.name]["props"].append(
                        [index, str(name), round(float(score), 3), *(round(float(v), 1) for v in box)]
                    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="JSON file to write")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--conf", type=float, default=0.1, help="detector threshold for proposals")
    parser.add_argument("--split", default="val", choices=("val", "train"))
    parser.add_argument("--no-reports", action="store_true", help="detector proposals only (no box run)")
    parser.add_argument("--set", dest="sets", action="append", choices=tuple(SETS),
                        help="only this photo set (repeatable; default all)")  # fmt: skip
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"proposals: no labelled photos at {args.data}", file=sys.stderr)
        return 2
    args.out.write_text(
        json.dumps(
            collect(
                args.config, args.data, args.conf, args.split, not args.no_reports, args.sets or tuple(SETS)
            )
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

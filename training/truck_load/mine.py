"""Find unlabelled trucks in other real photos and cut them as load crops, with their provenance.

The vehicle set alone holds 27 open loads: traffic cameras rarely see one. Street-level photos
(garbage collection, construction waste) and the far or opposite-lane trucks the vehicle set
leaves unlabelled hold more. Candidates come from the box's own detectors, fused the way
``deploy/edge.demo.yaml`` fuses them (YOLOX-nano COCO and streetwatch-det; a truck box that a
surer car, bus, motorcycle or bin overlaps is not a truck), so the crops are what the load stage
would be asked about. They are cut with the same function and margin as the vehicle set's
crops (:func:`training.truck_load.crops._write_crop`) and written to ``mined/manifest.csv``
with a ``source`` column; labels come from two passes by eye, never from these scores.

Groups: every photo set is grouped by :func:`training.datasets.dedup.find_duplicate_groups`
over both of its splits together, so the garbage set's augmented copy of a photo shares the
original's group. Vehicle photos take the group the vehicle crops already have
(``photo_groups.csv`` of ``training.truck_load.crops``), and a mined vehicle crop that looks like
an already cut truck of another photo takes that truck's group.

    nice -n 10 python -m training.truck_load.mine ../shared/data work --models models
    # then weaker candidates, added after the crops already labelled (their ids never change):
    nice -n 10 python -m training.truck_load.mine ../shared/data work --min-score 0.15 --append

To train on the labelled mined crops, cut exactly the boxes the committed manifest lists, without
detecting again (the detectors or their settings may have changed since the crops were labelled,
and a box found a little differently would be a crop nobody labelled):

    python -m training.truck_load.mine ../shared/data work --recut
"""

from __future__ import annotations

import argparse
import csv
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.config import DetectorConfig, FusionConfig
from edge.detections import Detections
from edge.detector.fusion import BoxFusion
from edge.detector.onnx_detector import OnnxDetector, load_detector
from edge.geometry import box_iou_one_to_many
from streetwatch.errors import DatasetError
from training.datasets.dedup import find_duplicate_groups
from training.truck_load.crops import (
    MANIFEST_FIELDS,
    SAME_TRUCK_CORRELATION,
    SAME_TRUCK_SIZE_RATIO,
    CropRecord,
    _boxes,
    _thumbnail,
    _write_crop,
    read_manifest,
)

log = logging.getLogger(__name__)

#: Photo sets searched, and the first group id of each (clear of the vehicle set's own ids).
SOURCES = {"garbage": 100_000, "signboards": 200_000, "vehicles": 0}
#: A fused truck must score this much (the demo box asks 0.35; a little lower finds more).
MIN_TRUCK_SCORE = 0.3
#: Smaller boxes are not confirmed by the box's rules (min_box_area_px 900) nor judgeable by eye.
MIN_BOX_AREA = 900
MIN_BOX_SIDE = 24
#: A vehicle-set detection overlapping any labelled box this much is that labelled object.
LABELLED_IOU = 0.3

MINED_FIELDS = (*MANIFEST_FIELDS, "source", "score")


@dataclass(frozen=True)
class MinedCrop:
    record: CropRecord
    source: str  # photo set: garbage, signboards, vehicles
    score: float  # fused truck score (provenance only; never a label)


def detectors(models: Path, min_score: float = MIN_TRUCK_SCORE) -> tuple[list[OnnxDetector], BoxFusion]:
    """YOLOX-nano and streetwatch-det with the demo box's vehicle fusion."""
    vehicles = ["car", "motorcycle", "truck", "bus"]
    yolox = DetectorConfig(
        model=str(models / "yolox_nano" / "yolox_nano.onnx"),
        conf=0.1,
        keep_classes=vehicles,
        providers=["CPUExecutionProvider"],
    )
    det = DetectorConfig(
        model=str(models / "streetwatch-det" / "streetwatch-det.onnx"),
        conf=0.1,
        keep_classes=["garbage_bin", "overflow", "car", "motor", "truck", "bus"],
        providers=["CPUExecutionProvider"],
    )
    fusion = FusionConfig(
        detectors=[0, 1],
        report_as=1,
        classes={
            "truck": ["truck"],
            "car": ["car"],
            "bus": ["bus"],
            "motorcycle": ["motorcycle", "motor"],
            "bin": ["garbage_bin", "overflow"],
        },
        context=["bin"],
        score="max",
        iou=0.5,
        conf=min_score,
    )
    return [load_detector(yolox, 0, threads=2), load_detector(det, 1, threads=2)], BoxFusion(fusion)


def truck_boxes(
    image: npt.NDArray[np.uint8], models: Sequence[OnnxDetector], fusion: BoxFusion
) -> list[tuple[tuple[int, int, int, int], float]]:
    """Fused truck boxes (pixels) and scores, largest first."""
    found = [m.detect(image) for m in models]
    merged = Detections(
        xyxy=np.concatenate([d.xyxy for d in found]),
        confidence=np.concatenate([d.confidence for d in found]),
        class_id=np.concatenate([d.class_id for d in found]),
        class_name=np.concatenate([d.class_name for d in found]),
        detector_index=np.concatenate([d.detector_index for d in found]),
    )
    fused = fusion.fuse(merged)
    h, w = image.shape[:2]
    out = []
    for xyxy, score, name in zip(fused.xyxy, fused.confidence, fused.class_name, strict=True):
        if str(name) != "truck":
            continue
        x1, y1 = max(0, round(float(xyxy[0]))), max(0, round(float(xyxy[1])))
        x2, y2 = min(w, round(float(xyxy[2]))), min(h, round(float(xyxy[3])))
        if min(x2 - x1, y2 - y1) >= MIN_BOX_SIDE and (x2 - x1) * (y2 - y1) >= MIN_BOX_AREA:
            out.append(((x1, y1, x2, y2), float(score)))
    return sorted(out, key=lambda b: -(b[0][2] - b[0][0]) * (b[0][3] - b[0][1]))


def _labelled(photo: Path, width: int, height: int) -> npt.NDArray[np.float32]:
    label_file = photo.parent.parent / "labels" / (photo.stem + ".txt")
    if not label_file.exists():
        return np.zeros((0, 4), dtype=np.float32)
    boxes = [box for _, box in _boxes(label_file, width, height)]
    return np.asarray(boxes, dtype=np.float32).reshape(-1, 4)


def _read(photo: Path) -> npt.NDArray[np.uint8]:
    image: npt.NDArray[np.uint8] | None = cv2.imread(str(photo))  # type: ignore[assignment]
    if image is None:
        raise DatasetError(f"cannot decode {photo}")
    return image


def mine_source(
    data: Path,
    source: str,
    crops_dir: Path,
    models: Sequence[OnnxDetector],
    fusion: BoxFusion,
    vehicle_groups: dict[str, int] | None = None,
) -> list[MinedCrop]:
    """Cut every fused truck of ``data/source/{train,val}/images`` that no label already boxes."""
    photos = sorted((data / source).glob("*/images/*.jpg"))
    if not photos:
        raise DatasetError(f"no photos under {data / source}/*/images/")
    found: list[tuple[int, tuple[int, int, int, int], float]] = []
    for index, photo in enumerate(photos):
        image = _read(photo)
        labelled = _labelled(photo, image.shape[1], image.shape[0]) if source == "vehicles" else None
        for box, score in truck_boxes(image, models, fusion):
            if labelled is not None and len(labelled):
                overlap = float(box_iou_one_to_many(np.asarray(box, dtype=np.float32), labelled).max())
                if overlap >= LABELLED_IOU:
                    continue  # the set labels this object already (a truck cut before, or a car/bus)
            found.append((index, box, score))
        if (index + 1) % 200 == 0:
            log.info("%s: %d of %d photos, %d trucks", source, index + 1, len(photos), len(found))
    if vehicle_groups is not None:
        group_of = [vehicle_groups[str(p.relative_to(data / source))] for p in photos]
    else:
        dense: dict[int, int] = {}
        raw = find_duplicate_groups(photos).group_of
        group_of = [SOURCES[source] + dense.setdefault(g, len(dense)) for g in raw]
    out = []
    counters: dict[int, int] = {}
    for index, box, score in found:
        photo = photos[index]
        split = photo.parent.parent.name
        k = counters[index] = counters.get(index, -1) + 1
        crop_id = f"{source}_{split}_{photo.stem}_{k}"
        _write_crop(_read(photo), box, crops_dir / f"{crop_id}.jpg")
        record = CropRecord(crop_id, split, str(photo.relative_to(data)), box, group_of[index], "unlabelled")
        out.append(MinedCrop(record, source, round(score, 4)))
    log.info("%s: %d truck crops from %d photos", source, len(out), len(photos))
    return out


def join_same_trucks(mined: list[MinedCrop], known: Sequence[CropRecord], crops_dir: Path) -> list[MinedCrop]:
    """A mined vehicle crop that looks like an already cut truck of another photo takes its group."""
    if not known:
        return mined

    def thumb(crop_id: str) -> npt.NDArray[np.float32]:
        return _thumbnail(_read(crops_dir / f"{crop_id}.jpg"))

    known_thumbs = np.stack([thumb(r.crop_id) for r in known])
    known_area = np.array([r.width * r.height for r in known], dtype=np.float64)
    out = []
    for m in mined:
        if m.source != "vehicles":
            out.append(m)
            continue
        similarity = known_thumbs @ thumb(m.record.crop_id)
        area = m.record.width * m.record.height
        ratio = np.maximum(known_area, area) / np.maximum(1.0, np.minimum(known_area, area))
        other_photo = np.array([r.image != m.record.image.split("/", 1)[1] for r in known])
        alike = (similarity > SAME_TRUCK_CORRELATION) & (ratio <= SAME_TRUCK_SIZE_RATIO**2) & other_photo
        if alike.any():
            group = known[int(np.flatnonzero(alike)[np.argmax(similarity[alike])])].group
            r = m.record
            record = CropRecord(r.crop_id, r.source_split, r.image, r.box, group, r.source_class)
            m = MinedCrop(record, m.source, m.score)
        out.append(m)
    return out


def keep_new(existing: Sequence[MinedCrop], found: Sequence[MinedCrop]) -> list[MinedCrop]:
    """Crops of ``found`` that no crop of ``existing`` already boxes (same photo, IoU >= 0.5),
    renamed so their numbers follow the photo's existing crops: labelled ids never change."""
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for m in existing:
        boxes.setdefault(m.record.image, []).append(m.record.box)
    taken = {image: len(known) for image, known in boxes.items()}
    out = []
    for m in found:
        r = m.record
        known = np.asarray(boxes.get(r.image, []), dtype=np.float32).reshape(-1, 4)
        if len(known) and float(box_iou_one_to_many(np.asarray(r.box, dtype=np.float32), known).max()) >= 0.5:
            continue
        k = taken[r.image] = taken.get(r.image, 0) + 1
        record = CropRecord(
            f"{r.crop_id.rsplit('_', 1)[0]}_{k - 1}", r.source_split, r.image, r.box, r.group, r.source_class
        )
        out.append(MinedCrop(record, m.source, m.score))
    return out


def recut(data: Path, manifest: Path, crops_dir: Path) -> int:
    """Cut the crops ``manifest`` lists from their photos in ``data``, box for box, into ``crops_dir``;
    how many. Raises :class:`DatasetError` for a photo that is missing or unreadable."""
    crops_dir.mkdir(parents=True, exist_ok=True)
    records = read_manifest(manifest)
    for record in records:
        _write_crop(_read(data / record.image), record.box, crops_dir / f"{record.crop_id}.jpg")
    return len(records)


def read_mined(path: Path) -> list[MinedCrop]:
    with path.open(newline="") as handle:
        scores = {row["crop_id"]: (row["source"], float(row["score"])) for row in csv.DictReader(handle)}
    return [MinedCrop(r, *scores[r.crop_id]) for r in read_manifest(path)]


def write_mined(path: Path, mined: Sequence[MinedCrop]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MINED_FIELDS)
        for m in mined:
            r = m.record
            row = [r.crop_id, r.source_split, r.image, *r.box, r.width, r.height, r.group, r.source_class]
            writer.writerow([*row, m.source, m.score])


def read_sources(path: Path) -> dict[str, str]:
    """``crop_id -> source`` of a mined manifest."""
    with path.open(newline="") as handle:
        return {row["crop_id"]: row["source"] for row in csv.DictReader(handle)}


def read_photo_groups(path: Path) -> dict[str, int]:
    with path.open(newline="") as handle:
        return {row["image"]: int(row["group"]) for row in csv.DictReader(handle)}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="../shared/data (garbage/, signboards/, vehicles/)")
    parser.add_argument(
        "work", type=Path, help="the folder training.truck_load.crops wrote (crops/, photo_groups.csv)"
    )
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--out", type=Path, default=Path("datasets/truck_load/mined/manifest.csv"))
    parser.add_argument("--sources", default=",".join(SOURCES))
    parser.add_argument("--min-score", type=float, default=MIN_TRUCK_SCORE, help="fused truck score")
    parser.add_argument(
        "--append", action="store_true", help="keep --out's crops and add only boxes it does not hold"
    )
    parser.add_argument(
        "--recut",
        action="store_true",
        help="detect nothing: cut the crops --out lists, box for box (to train on the labelled ones)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing --out with a new mining")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.recut:
        print(f"{recut(args.data, args.out, args.work / 'crops')} crops cut again from {args.out}")
        return
    if args.out.exists() and not (args.append or args.force):
        # Its crops are labelled by id: mining again may number other boxes with those ids.
        raise SystemExit(
            f"{args.out} exists and its crops are labelled: --recut cuts them again, --append adds new "
            "boxes after them, --out elsewhere mines afresh (--force replaces it)"
        )
    models, fusion = detectors(args.models, args.min_score)
    crops_dir = args.work / "crops"
    with tempfile.TemporaryDirectory() as scratch:
        # Cut into a scratch folder first: a new box may get a name an existing crop has.
        cut_dir = Path(scratch) if args.append else crops_dir
        mined: list[MinedCrop] = []
        for source in args.sources.split(","):
            groups = read_photo_groups(args.work / "photo_groups.csv") if source == "vehicles" else None
            mined += mine_source(args.data, source, cut_dir, models, fusion, groups)
        if args.append:
            existing = read_mined(args.out)
            new = keep_new(existing, mined)
            by_box = {(m.record.image, m.record.box): m.record.crop_id for m in mined}
            for m in new:
                old_name = by_box[(m.record.image, m.record.box)]
                shutil.copy(cut_dir / f"{old_name}.jpg", crops_dir / f"{m.record.crop_id}.jpg")
            mined = existing + join_same_trucks(new, read_manifest(args.work / "manifest.csv"), crops_dir)
        else:
            mined = join_same_trucks(mined, read_manifest(args.work / "manifest.csv"), crops_dir)
    write_mined(args.out, mined)
    per_source: dict[str, int] = {}
    for m in mined:
        per_source[m.source] = per_source.get(m.source, 0) + 1
    print(f"{len(mined)} truck crops {per_source} -> {args.out}")


if __name__ == "__main__":
    main()

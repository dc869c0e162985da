"""Cut every labelled truck box of a YOLO vehicle set into a crop, with a scene group per crop.

The load classifier sees what the edge box sees: the truck's box plus a margin of context, cut
from the frame (:func:`edge.evidence.render.crop`, the same function the box uses). Crops are
named after their photo and box (``<split>_<photo stem>_<box index>``) so a name says where a
crop came from, and the run is deterministic: the same photos give the same files and manifest.

Groups keep one truck out of both splits: photos that are near-duplicates or show the same
camera view a moment apart (:func:`training.datasets.dedup.find_duplicate_groups`) share a group,
and so do photos holding two crops that look alike (the same truck a few frames later, which a
photo-level check can miss when the traffic around it changed).

    python -m training.truck_load.crops ../shared/data/vehicles datasets/truck_load/work
"""

from __future__ import annotations

import argparse
import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from edge.evidence.render import crop
from streetwatch.errors import DatasetError
from training.datasets.dedup import find_duplicate_groups

log = logging.getLogger(__name__)

#: Class id of "truck" in the shared vehicle set (car, motor, truck, bus).
TRUCK_CLASS = 2
#: Context around the box, as a fraction of its size; the classifier's metadata carries it too.
CROP_MARGIN = 0.10
#: Two crops whose 16×16 grey thumbnails correlate above this show the same vehicle.
SAME_TRUCK_CORRELATION = 0.93
#: ... and only when their boxes are of similar size (a far and a near truck are not a duplicate).
SAME_TRUCK_SIZE_RATIO = 1.6

MANIFEST_FIELDS = ("crop_id", "source_split", "image", "x1", "y1", "x2", "y2", "width", "height", "group")


@dataclass(frozen=True)
class CropRecord:
    crop_id: str
    source_split: str
    image: str  # path relative to the data folder
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels of the photo
    group: int

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def _truck_boxes(label_file: Path, width: int, height: int) -> list[tuple[int, int, int, int]]:
    boxes = []
    for number, line in enumerate(label_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise DatasetError(f"{label_file}:{number}: expected 'class cx cy w h', got {line!r}")
        if int(parts[0]) != TRUCK_CLASS:
            continue
        cx, cy, w, h = (float(v) for v in parts[1:])
        x1 = max(0, round((cx - w / 2) * width))
        y1 = max(0, round((cy - h / 2) * height))
        x2 = min(width, round((cx + w / 2) * width))
        y2 = min(height, round((cy + h / 2) * height))
        if x2 > x1 and y2 > y1:
            boxes.append((x1, y1, x2, y2))
    return boxes


def _thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 0 else small


def _union_find(n: int, pairs: Sequence[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return [root(i) for i in range(n)]


def cut_crops(data_dir: Path, out_dir: Path) -> list[CropRecord]:
    """Write ``out_dir/crops/<crop_id>.jpg`` and ``out_dir/manifest.csv``; return the records."""
    photos = sorted(data_dir.glob("*/images/*.jpg"))
    if not photos:
        raise DatasetError(f"no photos under {data_dir}/*/images/")
    crops_dir = out_dir / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    cut: list[tuple[str, str, str, tuple[int, int, int, int], int]] = []  # id, split, image, box, photo
    thumbs: list[npt.NDArray[np.float32]] = []
    for photo_index, photo in enumerate(photos):
        image: npt.NDArray[np.uint8] | None = cv2.imread(str(photo))  # type: ignore[assignment]
        if image is None:
            raise DatasetError(f"cannot decode {photo}")
        label_file = photo.parent.parent / "labels" / (photo.stem + ".txt")
        if not label_file.exists():
            continue
        split = photo.parent.parent.name
        for k, box in enumerate(_truck_boxes(label_file, image.shape[1], image.shape[0])):
            crop_id = f"{split}_{photo.stem}_{k}"
            piece = crop(image, box, CROP_MARGIN, max_side=100_000)
            cv2.imwrite(str(crops_dir / f"{crop_id}.jpg"), piece, [cv2.IMWRITE_JPEG_QUALITY, 95])
            cut.append((crop_id, split, str(photo.relative_to(data_dir)), box, photo_index))
            thumbs.append(_thumbnail(image[box[1] : box[3], box[0] : box[2]]))
    log.info("cut %d truck crops from %d photos", len(cut), len(photos))

    photo_groups = find_duplicate_groups(photos).group_of
    pairs = _same_truck_pairs(cut, thumbs)
    # Merge photo groups through crops that look like the same truck.
    merged = _union_find(len(photos), [(photo_groups[i], photo_groups[j]) for i, j in pairs])
    group_of_photo = [merged[photo_groups[p]] for p in range(len(photos))]
    # Number groups densely in order of first appearance so the manifest reads simply.
    dense: dict[int, int] = {}
    records = []
    for crop_id, split, image_name, box, photo_index in cut:
        group = dense.setdefault(group_of_photo[photo_index], len(dense))
        records.append(CropRecord(crop_id, split, image_name, box, group))
    write_manifest(out_dir / "manifest.csv", records)
    return records


def _same_truck_pairs(
    cut: Sequence[tuple[str, str, str, tuple[int, int, int, int], int]],
    thumbs: Sequence[npt.NDArray[np.float32]],
) -> list[tuple[int, int]]:
    if not thumbs:
        return []
    similarity = np.stack(thumbs) @ np.stack(thumbs).T
    areas = np.array([(c[3][2] - c[3][0]) * (c[3][3] - c[3][1]) for c in cut], dtype=np.float64)
    pairs = []
    for i, j in zip(*np.nonzero(np.triu(similarity, k=1) > SAME_TRUCK_CORRELATION), strict=True):
        ratio = max(areas[i], areas[j]) / max(1.0, min(areas[i], areas[j]))
        if ratio <= SAME_TRUCK_SIZE_RATIO**2 and cut[i][4] != cut[j][4]:
            pairs.append((int(i), int(j)))
    return pairs


def write_manifest(path: Path, records: Sequence[CropRecord]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_FIELDS)
        for r in records:
            writer.writerow([r.crop_id, r.source_split, r.image, *r.box, r.width, r.height, r.group])


def read_manifest(path: Path) -> list[CropRecord]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        CropRecord(
            row["crop_id"],
            row["source_split"],
            row["image"],
            (int(row["x1"]), int(row["y1"]), int(row["x2"]), int(row["y2"])),
            int(row["group"]),
        )
        for row in rows
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="YOLO vehicle set: <data>/{train,val}/{images,labels}")
    parser.add_argument("out", type=Path, help="where crops/ and manifest.csv go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records = cut_crops(args.data, args.out)
    groups = len({r.group for r in records})
    print(f"{len(records)} crops in {groups} scene groups -> {args.out}")


if __name__ == "__main__":
    main()

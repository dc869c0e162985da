"""Cut every labelled truck box of a YOLO vehicle set into a crop, with a scene group per crop.

The load classifier sees what the edge box sees: the truck's box plus a margin of context, cut
from the frame (:func:`edge.evidence.render.crop`, the same function the box uses). Crops are
named after their photo and box (``<split>_<photo stem>_<box index>``) so a name says where a
crop came from, and the run is deterministic: the same photos give the same files and manifest.
A spread of the set's car and bus boxes is cut too (``negatives.csv``): the ``not_a_truck``
examples, labelled by the set's own authors, that a truck detector confuses most.

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

#: Class ids of the shared vehicle set (car, motor, truck, bus).
TRUCK_CLASS = 2
#: Boxes the set's own labellers called car or bus: the ``not_a_truck`` examples a truck
#: detector confuses most (the issue's false truck cases are cars, vans and SUVs).
NEGATIVE_CLASSES = {0: "car", 3: "bus"}
#: How many of each negative class to cut, spread evenly over the set (deterministic).
NEGATIVES_PER_CLASS = {"car": 90, "bus": 40}
#: Negatives smaller than this (pixels, shorter side) are too small for a detector to confirm.
MIN_NEGATIVE_SIDE = 28
#: Context around the box, as a fraction of its size; the classifier's metadata carries it too.
CROP_MARGIN = 0.10
#: Two crops whose 16×16 grey thumbnails correlate above this show the same vehicle.
SAME_TRUCK_CORRELATION = 0.93
#: ... and only when their boxes are of similar size (a far and a near truck are not a duplicate).
SAME_TRUCK_SIZE_RATIO = 1.6

MANIFEST_FIELDS = (
    "crop_id",
    "source_split",
    "image",
    "x1",
    "y1",
    "x2",
    "y2",
    "width",
    "height",
    "group",
    "source_class",
)


@dataclass(frozen=True)
class CropRecord:
    crop_id: str
    source_split: str
    image: str  # path relative to the data folder
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels of the photo
    group: int
    source_class: str = "truck"  # the vehicle set's own label for the box

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> int:
        return self.box[3] - self.box[1]


def _boxes(label_file: Path, width: int, height: int) -> list[tuple[int, tuple[int, int, int, int]]]:
    """(class id, box in pixels) of every box in a YOLO label file."""
    boxes = []
    for number, line in enumerate(label_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise DatasetError(f"{label_file}:{number}: expected 'class cx cy w h', got {line!r}")
        cx, cy, w, h = (float(v) for v in parts[1:])
        x1 = max(0, round((cx - w / 2) * width))
        y1 = max(0, round((cy - h / 2) * height))
        x2 = min(width, round((cx + w / 2) * width))
        y2 = min(height, round((cy + h / 2) * height))
        if x2 > x1 and y2 > y1:
            boxes.append((int(parts[0]), (x1, y1, x2, y2)))
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


def cut_crops(data_dir: Path, out_dir: Path) -> tuple[list[CropRecord], list[CropRecord]]:
    """Write ``out_dir/crops/<crop_id>.jpg``, ``manifest.csv`` (trucks) and ``negatives.csv``.

    Truck crops keep their historical names (``<split>_<stem>_<k>``, ``k`` counting truck boxes
    only); negatives are named ``<split>_<stem>_<class><k>``.
    """
    photos = sorted(data_dir.glob("*/images/*.jpg"))
    if not photos:
        raise DatasetError(f"no photos under {data_dir}/*/images/")
    crops_dir = out_dir / "crops"
    crops_dir.mkdir(parents=True, exist_ok=True)
    cut: list[tuple[str, str, str, tuple[int, int, int, int], int, str]] = []
    thumbs: list[npt.NDArray[np.float32]] = []
    negatives: dict[str, list[tuple[str, str, str, tuple[int, int, int, int], int, str]]] = {
        name: [] for name in NEGATIVE_CLASSES.values()
    }
    for photo_index, photo in enumerate(photos):
        label_file = photo.parent.parent / "labels" / (photo.stem + ".txt")
        if not label_file.exists():
            continue
        image: npt.NDArray[np.uint8] | None = cv2.imread(str(photo))  # type: ignore[assignment]
        if image is None:
            raise DatasetError(f"cannot decode {photo}")
        split, name = photo.parent.parent.name, str(photo.relative_to(data_dir))
        trucks = 0
        counters: dict[str, int] = {}
        for class_id, box in _boxes(label_file, image.shape[1], image.shape[0]):
            if class_id == TRUCK_CLASS:
                crop_id = f"{split}_{photo.stem}_{trucks}"
                trucks += 1
                _write_crop(image, box, crops_dir / f"{crop_id}.jpg")
                cut.append((crop_id, split, name, box, photo_index, "truck"))
                thumbs.append(_thumbnail(image[box[1] : box[3], box[0] : box[2]]))
            elif class_id in NEGATIVE_CLASSES:
                kind = NEGATIVE_CLASSES[class_id]
                k = counters[kind] = counters.get(kind, -1) + 1
                if min(box[2] - box[0], box[3] - box[1]) >= MIN_NEGATIVE_SIDE:
                    negatives[kind].append(
                        (f"{split}_{photo.stem}_{kind}{k}", split, name, box, photo_index, kind)
                    )
    chosen = []
    for kind, candidates in negatives.items():
        wanted = min(NEGATIVES_PER_CLASS[kind], len(candidates))
        # Evenly spaced over the sorted candidates: deterministic and spread over scenes.
        picks: list[int] = np.linspace(0, len(candidates) - 1, wanted).round().astype(int).tolist()
        chosen += [candidates[i] for i in sorted(set(picks))]
    for crop_id, _split, _name, box, photo_index, _kind in chosen:
        again: npt.NDArray[np.uint8] = cv2.imread(str(photos[photo_index]))  # type: ignore[assignment]
        _write_crop(again, box, crops_dir / f"{crop_id}.jpg")
    log.info("cut %d truck crops and %d negatives from %d photos", len(cut), len(chosen), len(photos))

    photo_groups = find_duplicate_groups(photos).group_of
    pairs = _same_truck_pairs(cut, thumbs)
    # Merge photo groups through crops that look like the same truck.
    merged = _union_find(len(photos), [(photo_groups[cut[i][4]], photo_groups[cut[j][4]]) for i, j in pairs])
    # Number groups densely in photo order, over every photo, so trucks and negatives share them.
    dense: dict[int, int] = {}
    group_of_photo = [dense.setdefault(merged[photo_groups[p]], len(dense)) for p in range(len(photos))]
    trucks_out = [CropRecord(c[0], c[1], c[2], c[3], group_of_photo[c[4]], c[5]) for c in cut]
    negatives_out = [CropRecord(c[0], c[1], c[2], c[3], group_of_photo[c[4]], c[5]) for c in chosen]
    write_manifest(out_dir / "manifest.csv", trucks_out)
    write_manifest(out_dir / "negatives.csv", negatives_out)
    # Every photo's group, also of photos without a labelled truck: trucks found later in them
    # (training.truck_load.mine) must share the group of the photo's other crops.
    with (out_dir / "photo_groups.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("image", "group"))
        by_photo = zip(photos, group_of_photo, strict=True)
        writer.writerows((str(photo.relative_to(data_dir)), group) for photo, group in by_photo)
    return trucks_out, negatives_out


def _write_crop(image: npt.NDArray[np.uint8], box: tuple[int, int, int, int], path: Path) -> None:
    piece = crop(image, box, CROP_MARGIN, max_side=100_000)
    cv2.imwrite(str(path), piece, [cv2.IMWRITE_JPEG_QUALITY, 95])


def _same_truck_pairs(
    cut: Sequence[tuple[str, str, str, tuple[int, int, int, int], int, str]],
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
            writer.writerow(
                [r.crop_id, r.source_split, r.image, *r.box, r.width, r.height, r.group, r.source_class]
            )


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
            row.get("source_class") or "truck",
        )
        for row in rows
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="YOLO vehicle set: <data>/{train,val}/{images,labels}")
    parser.add_argument("out", type=Path, help="where crops/ and manifest.csv go")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    trucks, negatives = cut_crops(args.data, args.out)
    groups = len({r.group for r in trucks})
    print(f"{len(trucks)} truck crops in {groups} scene groups, {len(negatives)} negatives -> {args.out}")


if __name__ == "__main__":
    main()

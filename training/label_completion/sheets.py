"""Sheets for a labelling pass: each photo with a pixel grid, its source labels and numbered proposals.

A *task* is one photo and one class: every signboard photo (signboard), every vehicle photo (truck),
every garbage photo (garbage: loose piles and overflowing bins), and every photo of any set with a
proposal of the class (``proposals.json``, see ``proposals``).
Vehicle photos are drawn four to a sheet, garbage photos nine, signboard photos one (``--side``
sets the photos per sheet side for every set: the pile passes drew four); the grid has
a line every 50 px and a number every 100 px in the photo's own pixels, so corners can be read
off it. Source labels of the class are green and numbered ``L<i>`` (other vehicle classes cyan;
on a pile task, ``garbage`` task, the source's loose garbage ``L<i>g`` and overflowing bins
``L<i>o`` green, its plain bins ``b<i>`` cyan), the config's reports red, detector proposals
yellow, each numbered. ``--seed`` shuffles the tasks and the proposals'
numbers, so a second pass follows neither the first pass's order nor its numbering;
``index.json`` maps each sheet cell (``V3B``: vehicle sheet 3, cell B) to its photo, class and
numbered proposals. ``--zoom CELL x1 y1 x2 y2`` enlarges a region of one cell's photo to
``zoom.png`` (grid every 25 px) for small objects. ``--split train`` draws the train photos;
``--photos FILE`` draws only the photos it names, so a large split is labelled part by part and
each part's two passes can be compared as soon as both are done; ``--class`` keeps one class's tasks;
``--every`` makes every photo a task, and ``--skip INDEX`` leaves out the tasks an earlier pass drew
(the garbage photos no detector proposed a sign or a truck on).

    python -m training.label_completion.sheets work/proposals.json work/pass2 --seed 2
    python -m training.label_completion.sheets work/train.json work/t1/pass1 --split train --photos part1.txt
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from bench.case_precision import SHARED
from bench.case_scoring import MATCH_RULES
from edge.geometry import iou
from streetwatch.events import ViolationType

Image = npt.NDArray[np.uint8]
Box = tuple[float, float, float, float]
Proposal = tuple[float, Box, str]  # score (1.0 for a report), box, "R" report or "D" detector
REPORT_TYPE = {"signboard": "illegal_signboard", "truck": "unsealed_truck", "garbage": "garbage_overflow"}
#: The label and detector classes a task of each class covers: those its report type's bench rule
#: scores against, so a pile task covers loose garbage and overflowing bins alike.
TASK_CLASSES = {
    task: tuple(sorted(MATCH_RULES[ViolationType(violation)].label_classes))
    for task, violation in REPORT_TYPE.items()
}
#: Photo sets labelled whole for a class (every photo is a task, proposed or not).
WHOLE = {("signboards", "signboard"), ("vehicles", "truck"), ("garbage", "garbage")}
#: Sheet groups: photo set, sheet letter, photos per side.
GROUPS = (("garbage", "G", 3), ("vehicles", "V", 2), ("signboards", "S", 1))
CELL = 650


def proposals(entry: dict[str, list[list[object]]], cls: str, min_score: float = 0.1) -> list[Proposal]:
    """The photo's reports and detector boxes of ``cls`` that no source label of it already covers
    (IoU >= 0.5), near-duplicates (IoU >= 0.6) merged, surest first."""
    covered = TASK_CLASSES[cls]
    labels = [_box(lab[1:]) for lab in entry["labels"] if lab[0] in covered]
    found: list[Proposal] = [(1.0, _box(r[1:]), "R") for r in entry["reports"] if r[0] == REPORT_TYPE[cls]]
    found += [(float(str(p[2])), _box(p[3:]), "D") for p in entry["props"] if p[1] in covered]
    found = [p for p in found if p[0] >= min_score]
    found.sort(key=lambda p: -p[0])
    kept: list[Proposal] = []
    for prop in found:
        if any(iou(prop[1], lab) >= 0.5 for lab in labels) or any(iou(prop[1], k[1]) >= 0.6 for k in kept):
            continue
        kept.append(prop)
    return kept


def _box(values: Sequence[object]) -> Box:
    x1, y1, x2, y2 = (float(str(v)) for v in values[:4])
    return (x1, y1, x2, y2)


def tasks(
    data: dict[str, dict[str, list[list[object]]]],
    classes: Sequence[str] = ("signboard", "truck"),
    every: bool = False,
    done: frozenset[tuple[str, str]] = frozenset(),
) -> list[tuple[str, str]]:
    """(photo, class) pairs to label: whole signboard and vehicle sets, and proposed photos; with
    ``every``, every photo for every class. Pairs in ``done`` (labelled by earlier passes) are left out."""
    out = []
    for name in sorted(data):
        photo_set = name.split("/")[0]
        for cls in classes:
            whole = every or (photo_set, cls) in WHOLE
            if (whole or proposals(data[name], cls)) and (name, cls) not in done:
                out.append((name, cls))
    return out


def read_photo(name: str, data: Path, split: str) -> Image:
    """Photo ``<set>/<file>`` of ``split`` under ``data``; FileNotFoundError naming it if unreadable."""
    photo_set, file = name.split("/", 1)
    path = data / photo_set / split / "images" / file
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"cannot read {path}")
    return np.asarray(image, dtype=np.uint8)


def draw(name: str, entry: dict[str, list[list[object]]], cls: str, order: Sequence[int],
         scale: float = 1.0, grid: int = 50, data: Path = SHARED, split: str = "val") -> Image:  # fmt: skip
    """The photo with its grid, source labels and the proposals numbered in ``order``."""
    image = read_photo(name, data, split)
    h, w = image.shape[:2]
    size = (int(w * scale), int(h * scale))
    img: Image = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
    lines = img.copy()
    for x in range(0, w, grid):
        cv2.line(lines, (int(x * scale), 0), (int(x * scale), int(h * scale)), (200, 200, 200), 1)
    for y in range(0, h, grid):
        cv2.line(lines, (0, int(y * scale)), (int(w * scale), int(y * scale)), (200, 200, 200), 1)
    img = np.asarray(cv2.addWeighted(lines, 0.35, img, 0.65, 0), dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for x in range(0, w, 100):
        cv2.putText(img, str(x), (int(x * scale) + 2, 12), font, 0.4, (255, 255, 255), 1)
    for y in range(100, h, 100):
        cv2.putText(img, str(y), (2, int(y * scale) - 2), font, 0.4, (255, 255, 255), 1)
    for i, lab in enumerate(entry["labels"]):
        b = [int(v * scale) for v in _box(lab[1:])]
        if lab[0] in TASK_CLASSES[cls]:
            cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (0, 255, 0), 2)
            # A pile task's labels say which class the source gave them: g(arbage), o(verflow).
            tag = f"L{i}" if len(TASK_CLASSES[cls]) == 1 else f"L{i}{str(lab[0])[0]}"
            cv2.putText(img, tag, (b[0] + 2, b[3] - 3), font, 0.4, (0, 255, 0), 1)
        elif cls == "garbage" and lab[0] == "garbage_bin":
            cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (255, 200, 0), 1)
            cv2.putText(img, f"b{i}", (b[0] + 1, b[1] + 10), font, 0.35, (255, 200, 0), 1)
        elif cls == "truck" and lab[0] in ("car", "bus", "motor"):
            cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), (255, 200, 0), 1)
            cv2.putText(img, str(lab[0])[0], (b[0] + 1, b[1] + 10), font, 0.35, (255, 200, 0), 1)
    props = proposals(entry, cls)
    for number, index in enumerate(order):
        _, box, kind = props[index]
        b = [int(v * scale) for v in box]
        colour = (0, 0, 255) if kind == "R" else (0, 220, 255)
        cv2.rectangle(img, (b[0], b[1]), (b[2], b[3]), colour, 1)
        cv2.putText(img, str(number), (b[0] + 2, b[1] + 12), font, 0.45, colour, 1)
    return img


def make(
    data: dict[str, dict[str, list[list[object]]]],
    out: Path,
    seed: int,
    split: str = "val",
    classes: Sequence[str] = ("signboard", "truck"),
    photos: Path = SHARED,
    side: int | None = None,
    every: bool = False,
    done: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, object]:
    """Draw every sheet of a pass into ``out`` and return its index (also written as index.json);
    ``side`` photos per sheet side for every set instead of the set's own (:data:`GROUPS`);
    ``every`` and ``done`` as :func:`tasks` takes them."""
    out.mkdir(parents=True, exist_ok=True)
    todo = tasks(data, classes, every, done)
    if seed:
        random.Random(seed).shuffle(todo)
    index: dict[str, object] = {}
    for photo_set, letter, own_side in GROUPS:
        side = own_side if side is None else side
        items = [t for t in todo if t[0].startswith(f"{photo_set}/")]
        for sheet, start in enumerate(range(0, len(items), side * side)):
            canvas = np.zeros((CELL * side, CELL * side, 3), np.uint8) if side > 1 else None
            for k, (name, cls) in enumerate(items[start : start + side * side]):
                props = proposals(data[name], cls)
                order = list(range(len(props)))
                if seed:  # each photo's proposals renumbered with the pass's own seed
                    random.Random(seed).shuffle(order)
                img = draw(name, data[name], cls, order, data=photos, split=split)
                cell = f"{letter}{sheet}{chr(65 + k)}"
                index[cell] = [
                    name,
                    cls,
                    order,
                    [[*(round(v, 1) for v in props[i][1]), props[i][2], props[i][0]] for i in order],
                    # the photo's source labels by their sheet number (L<i>), so a step can name one
                    [[lab[0], *(round(float(str(v)), 1) for v in lab[1:5])] for lab in data[name]["labels"]],
                ]
                if canvas is None:
                    canvas = img
                    continue
                y, x = (k // side) * CELL, (k % side) * CELL
                h, w = (
                    min(img.shape[0], CELL - 10),
                    min(img.shape[1], CELL - 10),
                )  # photos under a cell fit too
                canvas[y + 10 : y + 10 + h, x + 10 : x + 10 + w] = img[:h, :w]
                cv2.putText(canvas, f"{chr(65 + k)} {cls}", (x + 12, y + CELL - 5),
                            cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 0, 255), 2)  # fmt: skip
            assert canvas is not None
            cv2.imwrite(str(out / f"{letter}{sheet:02d}.png"), canvas)
    (out / "index.json").write_text(json.dumps(index, indent=0))
    return index


def zoom(data: dict[str, dict[str, list[list[object]]]], out: Path, cell: str, region: Sequence[int],
         split: str = "val", photos: Path = SHARED) -> Path:  # fmt: skip
    """Enlarge a region of one cell's photo (3x, grid every 25 px, 1000 px wide) to ``zoom.png``."""
    index = json.loads((out / "index.json").read_text())
    name, cls, order = index[cell][:3]
    img = draw(name, data[name], cls, order, scale=3.0, grid=25, data=photos, split=split)
    x1, y1, x2, y2 = (int(v) * 3 for v in region)
    crop = img[max(0, y1) : y2, max(0, x1) : x2]
    factor = 1000 / max(crop.shape[:2])
    path = out / "zoom.png"
    cv2.imwrite(str(path), cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proposals", type=Path, help="from python -m training.label_completion.proposals")
    parser.add_argument("out", type=Path, help="folder for this pass's sheets")
    parser.add_argument("--seed", type=int, default=0, help="0: photo order; otherwise a shuffled pass")
    parser.add_argument("--zoom", nargs=5, metavar=("CELL", "X1", "Y1", "X2", "Y2"))
    parser.add_argument("--split", default="val", choices=("val", "train"), help="the photos' split")
    parser.add_argument("--data", type=Path, default=SHARED, help="the photo sets (<set>/<split>/images)")
    parser.add_argument("--photos", type=Path, help="a file of photo names (<set>/<file>): only these")
    parser.add_argument("--side", type=int, choices=(1, 2, 3),
                        help="photos per sheet side (default: garbage 3, vehicles 2, signs 1)")  # fmt: skip
    parser.add_argument("--every", action="store_true",
                        help="every photo is a task for every class asked, proposed or not")  # fmt: skip
    parser.add_argument("--skip", type=Path, action="append", default=[],
                        help="an earlier pass's index.json: its tasks are not drawn again")  # fmt: skip
    parser.add_argument("--class", dest="classes", action="append", choices=tuple(TASK_CLASSES),
                        help="only this class's tasks (repeatable; default both)")  # fmt: skip
    args = parser.parse_args(argv)
    data = json.loads(args.proposals.read_text())
    if args.photos:  # a part of a large split, so two passes can be compared part by part
        wanted = set(args.photos.read_text().split())
        data = {name: entry for name, entry in data.items() if name in wanted}
    if args.zoom:
        print(zoom(data, args.out, args.zoom[0], [int(v) for v in args.zoom[1:]], args.split, args.data))
    else:
        classes = args.classes or ("signboard", "truck")
        earlier = [cell for path in args.skip for cell in json.loads(path.read_text()).values()]
        done = frozenset((str(cell[0]), str(cell[1])) for cell in earlier)
        drawn = make(data, args.out, args.seed, args.split, classes, args.data, args.side, args.every, done)
        print(f"{len(drawn)} tasks drawn into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The third look: each disagreement of two labelling passes drawn, decided, and written as resolutions.

``passes agreement`` lists every box the two passes disagree on (drawn by one pass only, or drawn
by both with different kinds). ``resolve sheets`` draws each of them as ``D000.png``: the region
of the photo around both boxes, enlarged, with a grid in the photo's own pixels, pass 1's box in
blue marked ``1``, pass 2's in magenta marked ``2`` and the photo's source labels of the class in
green. The resolver answers one line per disagreement::

    D000: 1 | the sign above the door; pass 2 missed it
    D001: 2 | pass 1 cut the board's left end
    D002: none | a poster pasted on the wall, not a sign
    D003: add 120 40 260 90 | both passes drew part of the board
    D004: ign 10 10 40 60 | cut by the photo's edge: ignore

``1`` / ``2`` keep that pass's box and kind, ``none`` keeps neither, ``add`` / ``ign`` give the
final box; the reason is required. ``resolve answers`` writes ``resolution.csv`` in the columns
``passes final`` reads.

    python -m training.label_completion.resolve sheets agreement.json work/third --split train
    python -m training.label_completion.resolve answers work/third/index.json work/third.txt resolution.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from bench.case_precision import SHARED
from training.label_completion.passes import scored_alike
from training.label_completion.sheets import read_photo

COLUMNS = (
    "photo",
    "class",
    "pass1_box",
    "pass1_kind",
    "pass2_box",
    "pass2_kind",
    "final_box",
    "final_kind",
    "reason",
)
MARGIN = 80
SIDE = 900
PASS_COLOURS = {"1": (255, 120, 0), "2": (255, 0, 255)}  # BGR: blue, magenta


def _region(boxes: Sequence[Sequence[float]], width: int, height: int) -> tuple[int, int, int, int]:
    x1 = max(0, int(min(b[0] for b in boxes)) - MARGIN)
    y1 = max(0, int(min(b[1] for b in boxes)) - MARGIN)
    x2 = min(width, int(max(b[2] for b in boxes)) + MARGIN)
    y2 = min(height, int(max(b[3] for b in boxes)) + MARGIN)
    return x1, y1, x2, y2


def draw(item: dict[str, object], labels: Sequence[Sequence[object]], data: Path, split: str) -> np.ndarray:
    """One disagreement: the region around both passes' boxes, enlarged, grid in photo pixels."""
    image = read_photo(str(item["photo"]), data, split)
    drawn = {p: box for p in "12" if (box := _pass_box(item, p))}
    boxes = {p: [float(str(v)) for v in box[:4]] for p, box in drawn.items()}
    h, w = image.shape[:2]
    x1, y1, x2, y2 = _region(list(boxes.values()), w, h)
    scale = min(SIDE / max(x2 - x1, 1), SIDE / max(y2 - y1, 1), 4.0)
    crop = cv2.resize(image[y1:y2, x1:x2], None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)

    def at(x: float, y: float) -> tuple[int, int]:
        return int((x - x1) * scale), int((y - y1) * scale)

    step = 10 if (x2 - x1) < 150 else 25 if (x2 - x1) < 400 else 50
    font = cv2.FONT_HERSHEY_SIMPLEX
    for gx in range((x1 // step + 1) * step, x2, step):
        cv2.line(crop, at(gx, y1), at(gx, y2), (200, 200, 200), 1)
        if gx % (step * 2) == 0:
            cv2.putText(crop, str(gx), (at(gx, y1)[0] + 2, 12), font, 0.4, (255, 255, 255), 1)
    for gy in range((y1 // step + 1) * step, y2, step):
        cv2.line(crop, at(x1, gy), at(x2, gy), (200, 200, 200), 1)
        if gy % (step * 2) == 0:
            cv2.putText(crop, str(gy), (2, at(x1, gy)[1] - 2), font, 0.4, (255, 255, 255), 1)
    for label in labels:  # the source labels the disagreement's class is scored against
        if scored_alike(str(label[0]), str(item["class"])):
            b = [float(str(v)) for v in label[1:5]]
            cv2.rectangle(crop, at(b[0], b[1]), at(b[2], b[3]), (0, 255, 0), 2)
    for p, b in boxes.items():
        kind = str(drawn[p][4])
        cv2.rectangle(crop, at(b[0], b[1]), at(b[2], b[3]), PASS_COLOURS[p], 2)
        cv2.putText(
            crop,
            f"{p} {kind}",
            (at(b[0], b[1])[0] + 3, at(b[0], b[1])[1] + 16),
            font,
            0.5,
            PASS_COLOURS[p],
            2,
        )
    return np.asarray(crop, dtype=np.uint8)


def make(agreement: dict[str, object], proposals: dict[str, dict[str, list[list[object]]]], out: Path,
         data: Path = SHARED, split: str = "val") -> dict[str, dict[str, object]]:  # fmt: skip
    """Draw every disagreement into ``out`` (``D000.png`` ...) and write ``index.json``."""
    out.mkdir(parents=True, exist_ok=True)
    items = agreement["disagreements"]
    assert isinstance(items, list)
    index: dict[str, dict[str, object]] = {}
    for number, item in enumerate(items):
        key = f"D{number:03d}"
        labels = proposals.get(str(item["photo"]), {}).get("labels", [])
        cv2.imwrite(str(out / f"{key}.png"), draw(item, labels, data, split))
        index[key] = item
    (out / "index.json").write_text(json.dumps(index, indent=0))
    return index


def _pass_box(item: dict[str, object], which: str) -> Sequence[object] | None:
    """Pass ``which``'s [x1, y1, x2, y2, kind] of a disagreement, None when that pass drew none."""
    box = item.get(f"pass{which}")
    return box if isinstance(box, list) and box else None


def _box_text(box: Sequence[object] | None) -> tuple[str, str]:
    if not box:
        return "", ""
    return " ".join(str(v) for v in box[:4]), str(box[4])


def parse(index: dict[str, dict[str, object]], lines: Sequence[str]) -> list[dict[str, str]]:
    """Resolution rows from the resolver's lines; every disagreement must be answered once."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key, _, rest = line.partition(":")
        key = key.strip()
        decision, _, reason = rest.partition("|")
        if key not in index or key in seen:
            raise ValueError(f"line {number}: {key!r} is not a disagreement, or answered twice")
        if not reason.strip():
            raise ValueError(f"line {number}: a decision needs its reason after '|'")
        seen.add(key)
        item = index[key]
        pass1_box, pass1_kind = _box_text(_pass_box(item, "1"))
        pass2_box, pass2_kind = _box_text(_pass_box(item, "2"))
        verb, *args = decision.split()
        if verb in ("1", "2"):
            chosen = (pass1_box, pass1_kind) if verb == "1" else (pass2_box, pass2_kind)
            if not chosen[0]:
                raise ValueError(f"line {number}: pass {verb} drew no box for {key}")
            final_box, final_kind = chosen
        elif verb == "none":
            final_box, final_kind = "", ""
        elif verb in ("add", "ign") and len(args) == 4:
            values = [float(v) for v in args]
            if not (values[0] < values[2] and values[1] < values[3]):
                raise ValueError(f"line {number}: box {' '.join(args)} is empty or inverted")
            final_box, final_kind = " ".join(args), "added" if verb == "add" else "ignore"
        else:
            raise ValueError(
                f"line {number}: decision {decision.strip()!r} is none of 1, 2, none, add/ign x1 y1 x2 y2"
            )
        # a not_a row names its own class (a pile pair may be overflow in one pass, garbage in the other)
        cls = final_kind.removeprefix("not_a_") if final_kind.startswith("not_a_") else str(item["class"])
        rows.append(
            {
                "photo": str(item["photo"]),
                "class": cls,
                "pass1_box": pass1_box,
                "pass1_kind": pass1_kind,
                "pass2_box": pass2_box,
                "pass2_kind": pass2_kind,
                "final_box": final_box,
                "final_kind": final_kind,
                "reason": reason.strip(),
            }
        )
    missing = sorted(set(index) - seen)
    if missing:
        raise ValueError(f"disagreements not answered: {', '.join(missing[:10])}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sheets", help="draw each disagreement")
    p.add_argument("agreement", type=Path, help="from passes agreement")
    p.add_argument("proposals", type=Path, help="the photos' proposals file (for their source labels)")
    p.add_argument("out", type=Path)
    p.add_argument("--split", default="val", choices=("val", "train"))
    p.add_argument("--data", type=Path, default=SHARED)
    p = sub.add_parser("answers", help="the resolver's lines to resolution.csv")
    p.add_argument("index", type=Path)
    p.add_argument("answers", type=Path)
    p.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "sheets":
            agreement = json.loads(args.agreement.read_text())
            index = make(agreement, json.loads(args.proposals.read_text()), args.out, args.data, args.split)
            print(f"{len(index)} disagreements drawn into {args.out}")
        else:
            rows = parse(json.loads(args.index.read_text()), args.answers.read_text().splitlines())
            with args.out.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            print(f"{args.out}: {len(rows)} resolutions")
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"resolve: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

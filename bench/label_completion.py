"""The team's completion of the validation labels, merged onto the sources' labels.

The sources label only part of what is in their photos (``datasets/label_completion/PROTOCOL.md``).
``completion.csv`` there (signs and trucks) and ``garbage/completion.csv`` (piles and overflowing
bins) list, per photo, the boxes the team added by eye: one row per box with
``photo`` (``<set>/<file>``, as ``bench.case_precision`` names photos), ``class``, ``x1, y1, x2, y2``
in photo pixels and ``kind``:

* ``added``: an object of the class the source left unlabelled; it becomes a label;
* ``ignore``: too small to judge or not decidable; it becomes an ignore box
  (``bench.case_scoring``: a report on it counts neither right nor wrong, and it is not counted in
  recall);
* ``not_a_<class>``: a source label of that class that is not one; the source label it overlaps
  most (IoU >= 0.5) is dropped.

Pure functions and a reader; the source labels are never edited.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.case_scoring import Box, Label
from edge.geometry import iou

FOLDER = Path(__file__).resolve().parent.parent / "datasets" / "label_completion"
#: Signs and trucks the sources left out (signboard, vehicle and some garbage photos).
COMPLETION = FOLDER / "completion.csv"
#: Piles and overflowing bins on every garbage photo (PROTOCOL.md, "Piles").
PILES = FOLDER / "garbage" / "completion.csv"
#: Signs and trucks on the garbage photos no detector proposed one on (PROTOCOL.md, "The rest").
REST = FOLDER / "garbage_rest" / "completion.csv"
#: What the benches score against by default: every completion, merged per photo.
COMPLETIONS = (COMPLETION, PILES, REST)
KINDS = ("added", "ignore")
#: A ``not_a_<class>`` row names the source label it overlaps at least this much.
NOT_A_IOU = 0.5
COLUMNS = ("photo", "class", "x1", "y1", "x2", "y2", "kind")


class CompletionError(ValueError):
    """A completion file that cannot be used as it is (the message names the file and the row)."""


@dataclass(frozen=True)
class CompletionBox:
    class_name: str
    box: Box
    kind: str  # "added", "ignore" or "not_a_<class>"


def read_completion(path: Path = COMPLETION) -> dict[str, list[CompletionBox]]:
    """The completion rows per photo; a malformed row is refused with its line number."""
    if not path.is_file():
        raise CompletionError(f"no completion labels at {path}")
    out: dict[str, list[CompletionBox]] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise CompletionError(
                f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}"
            )
        for line, row in enumerate(reader, start=2):
            out.setdefault(row["photo"], []).append(_row(path, line, row))
    return out


def read_completions(paths: Sequence[Path] = COMPLETIONS) -> dict[str, list[CompletionBox]]:
    """Several completion files merged per photo (each covers its own classes or photos)."""
    out: dict[str, list[CompletionBox]] = {}
    for path in paths:
        for photo, boxes in read_completion(path).items():
            out.setdefault(photo, []).extend(boxes)
    return out


def _row(path: Path, line: int, row: Mapping[str, str]) -> CompletionBox:
    where = f"{path}:{line}"
    cls, kind = row["class"].strip(), row["kind"].strip()
    if not cls or "/" not in row["photo"]:
        raise CompletionError(f"{where}: photo must be <set>/<file> and class must be named")
    if kind not in KINDS and kind != f"not_a_{cls}":
        raise CompletionError(f"{where}: kind {kind!r} is none of added, ignore, not_a_{cls}")
    try:
        x1, y1, x2, y2 = (float(row[k]) for k in ("x1", "y1", "x2", "y2"))
    except ValueError as exc:
        raise CompletionError(f"{where}: box is not four numbers ({exc})") from None
    if not (x1 < x2 and y1 < y2):
        raise CompletionError(f"{where}: box ({x1}, {y1}, {x2}, {y2}) is empty or inverted")
    return CompletionBox(cls, (x1, y1, x2, y2), kind)


def named_by(wrong: CompletionBox, boxes: Sequence[Box]) -> int | None:
    """Index of the source box a ``not_a`` row names: the one it overlaps most, at IoU >= NOT_A_IOU
    (``boxes`` are the photo's source boxes of the row's class)."""
    best = max(range(len(boxes)), key=lambda i: iou(boxes[i], wrong.box), default=None)
    return best if best is not None and iou(boxes[best], wrong.box) >= NOT_A_IOU else None


def complete(labels: Sequence[Label], boxes: Sequence[CompletionBox]) -> tuple[Label, ...]:
    """A photo's source labels with its completion: ``not_a`` labels dropped, added and ignore on top."""
    kept = list(labels)
    for wrong in (b for b in boxes if b.kind.startswith("not_a_")):
        same = [lab for lab in kept if lab.class_name == wrong.class_name and not lab.ignore]
        index = named_by(wrong, [lab.box for lab in same])
        if index is not None:
            kept.remove(same[index])
    extra = [Label(b.class_name, b.box, ignore=b.kind == "ignore") for b in boxes if b.kind in KINDS]
    return (*kept, *extra)

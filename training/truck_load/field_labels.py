"""Field labels: reviewed truck cases -> truck load crops, another source beside the team's labels.

A dispatcher reviewing an ``unsealed_truck`` case sets its ``load`` attribute (uncovered, partly
covered, covered, empty, closed body) or rejects it; ``streetwatch dataset from-reviews`` exports
those decisions with the cases' clean frames. This turns one or more such exports into crops
and labels in the truck load set's own format (``datasets/truck_load/PROTOCOL.md``, step 5):

    python -m training.truck_load.field_labels data/reviews-may data/reviews-june --out work/field

writes ``<out>/crops/<crop_id>.jpg`` (cut like every other crop: the box plus ``CROP_MARGIN``
of context, with the function the edge box uses), ``<out>/manifest.csv`` (the truck set's
columns plus ``source`` = ``field``, ``case_id``, ``decision``, ``reviewer``, ``reviewed_at``
and the export it came from) and ``<out>/labels_final.csv`` (``crop_id,label,how``, the protocol's
classes). ``python -m training.truck_load.train ... --field <out>`` trains on them too.

What a reviewed truck case says about its load (first rule that applies):

=========================================  ============================================
the review                                  label
=========================================  ============================================
reviewer named another class (reject as     ``not_a_truck``
``bus``, confirm as ``car``)
``load`` attribute set                      its protocol class (``uncovered`` ->
                                            ``open_bed_uncovered``, ``empty`` ->
                                            ``open_bed_empty``, ...)
rejected as ``wrong_class``                 ``not_a_truck`` (the box is no truck)
rejected as ``not_a_violation`` and the     ``not_a_truck``
reviewer's words say "not a truck"
anything else (a confirmation without a     nothing: listed as ``no load answer``; a
load, ``not_a_violation`` of a truck        sealed truck is not a violation either, so
whose load was not set, ``permitted``)      the rejection alone does not say which load
``duplicate`` / ``bad_image`` rejection     nothing (the other case or no image)
=========================================  ============================================

A case reviewed several times (reopened and decided again, found in several exports) counts
once: its latest decision wins, and a decision taken back later (``withdrawn``) drops it. Every
frame the export holds for that decision becomes a crop; crops of one case share a scene group
(``FIELD_GROUP_BASE`` + case id), so one truck never sits in both splits. A frame that is not a
readable image, or whose bytes do not match the SHA-256 it is named after, is refused with the
reason and the case's other frames and the other cases are still imported.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import shutil
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.evidence.render import crop
from streetwatch.errors import DatasetError
from training.datasets.importers.yolo import MANIFEST_NAME
from training.truck_load.agreement import read_labels
from training.truck_load.crops import CROP_MARGIN, MANIFEST_FIELDS, read_manifest
from training.truck_load.data import LABEL_TO_CLASS, LabelledCrop

SOURCE = "field"
VIOLATION = "unsealed_truck"
#: Scene groups of field crops start here: clear of the vehicle set's and the mined crops' ids.
FIELD_GROUP_BASE = 1_000_000
#: The console's ``load`` values (datasets/classes.yaml review_attributes) -> protocol classes.
LOAD_TO_LABEL = {
    "uncovered": "open_bed_uncovered",
    "partly_covered": "partly_covered",
    "covered": "covered",
    "empty": "open_bed_empty",
    "closed_body": "closed_body",
}
#: Classes a reviewer may name that are still a truck (the load question stands for them).
TRUCK_CLASSES = frozenset({"truck", "uncovered_truck_load", "covered_truck_load"})
#: Reviewer's words that make a "not a violation" rejection say "no truck in the box".
NOT_A_TRUCK_WORDS = re.compile(r"\b(not|no|isn't|is not)\s+(a\s+)?truck\b", re.IGNORECASE)
#: Rejections that never label the load.
SKIPPED_REASONS = frozenset({"duplicate", "bad_image"})
FIELD_COLUMNS = (*MANIFEST_FIELDS, "source", "case_id", "decision", "reviewer", "reviewed_at", "export")
_SHA256_NAME = re.compile(r"([0-9a-f]{64})")


@dataclass(frozen=True)
class Sighting:
    """One exported frame of a reviewed truck case, as the export recorded it."""

    case_id: int
    reviewed_at: str
    export_rank: int  # order of the export on the command line: a tie on time goes to the later one
    export: Path
    image: Path
    record: dict[str, Any]


@dataclass
class FieldReport:
    out_dir: Path
    cases: int = 0
    crops: int = 0
    labels: Counter[str] = field(default_factory=Counter)
    #: Reviewed truck cases that label no load, by why.
    skipped: Counter[str] = field(default_factory=Counter)
    #: Cases whose earlier review a later one replaced (the latest decision won).
    superseded: int = 0
    withdrawn: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "cases": self.cases,
            "crops": self.crops,
            "labels": dict(sorted(self.labels.items())),
            "skipped": dict(sorted(self.skipped.items())),
            "superseded": self.superseded,
            "withdrawn": self.withdrawn,
            "problems": self.problems,
        }

    def summary(self) -> str:
        labels = ", ".join(f"{k} {v}" for k, v in sorted(self.labels.items())) or "none"
        lines = [
            f"{self.cases} reviewed truck cases -> {self.crops} crops in {self.out_dir} ({labels})",
        ]
        if self.skipped:
            lines.append("no load label: " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items())))
        if self.superseded:
            lines.append(f"{self.superseded} earlier reviews replaced by a later decision of the same case")
        if self.withdrawn:
            lines.append(
                f"withdrawn (reopened, no decision stands): cases {', '.join(map(str, self.withdrawn))}"
            )
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)


def load_label(record: dict[str, Any]) -> tuple[str | None, str]:
    """The protocol class a review gives the truck's load (None: none) and how it was read."""
    named = record.get("label")
    reason = record.get("reject_reason")
    if reason in SKIPPED_REASONS:
        return None, f"rejected as {reason}"
    if named and named not in TRUCK_CLASSES:
        return "not_a_truck", f"reviewer named {named}"
    load = (record.get("attributes") or {}).get("load")
    if load is not None:
        if load not in LOAD_TO_LABEL:
            raise DatasetError(f"load value {load!r} is not one of {sorted(LOAD_TO_LABEL)}")
        return LOAD_TO_LABEL[load], f"load attribute {load}"
    if reason == "wrong_class":
        return "not_a_truck", "rejected as wrong class"
    if reason == "not_a_violation" and NOT_A_TRUCK_WORDS.search(record.get("reason") or ""):
        return "not_a_truck", f"rejected, reviewer wrote {record.get('reason')!r}"
    return None, "no load answer"


def read_export(folder: Path, rank: int) -> tuple[list[Sighting], dict[int, str]]:
    """The truck sightings of one from-reviews export, and its withdrawn cases with their times."""
    manifest_file = folder / MANIFEST_NAME
    if not manifest_file.is_file():
        raise DatasetError(
            f"{folder}: no {MANIFEST_NAME}; is it a `streetwatch dataset from-reviews` export?"
        )
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{manifest_file}: not JSON ({exc})") from None
    sightings = []
    unknown = 0
    for name, entry in sorted(manifest.get("images", {}).items()):
        for record in entry.get("reviews") or []:
            if "violation_type" not in record:
                unknown += 1  # exported before reviews carried their provenance: type and box unknown
                continue
            if record["violation_type"] != VIOLATION:
                continue
            sightings.append(
                Sighting(
                    int(record["case_id"]),
                    str(record.get("reviewed_at") or ""),
                    rank,
                    folder,
                    folder / name,
                    record,
                )
            )
    withdrawn: dict[int, str] = {}
    report_file = folder / "review_export.json"
    if report_file.is_file():
        exported = json.loads(report_file.read_text(encoding="utf-8"))
        times = exported.get("withdrawn_at") or {}
        withdrawn = {int(c): str(times.get(str(c)) or "") for c in exported.get("withdrawn", [])}
    if unknown and not sightings:
        raise DatasetError(
            f"{folder}: its {unknown} reviews carry no violation type or box (exported by an older "
            "version); export the reviews again with `streetwatch dataset from-reviews`"
        )
    return sightings, withdrawn


def latest_decisions(
    sightings: Sequence[Sighting], withdrawn: Sequence[tuple[int, str, int]], report: FieldReport
) -> dict[int, list[Sighting]]:
    """Per case, the frames of its latest decision; cases whose latest word is a withdrawal are dropped.

    The same decision found in several exports is one review (its newest export's frames are used);
    a later decision of the same case replaces it (counted in ``report.superseded``).
    """
    by_case: dict[int, dict[str, dict[int, list[Sighting]]]] = {}
    for s in sightings:
        times = by_case.setdefault(s.case_id, {})
        times.setdefault(s.reviewed_at, {}).setdefault(s.export_rank, []).append(s)
    latest: dict[int, list[Sighting]] = {}
    for case_id, decisions in sorted(by_case.items()):
        at = max(decisions)
        rank = max(decisions[at])
        report.superseded += len(decisions) - 1
        if any(c == case_id and (w_at, w_rank) > (at, rank) for c, w_at, w_rank in withdrawn):
            report.withdrawn.append(case_id)
            continue
        latest[case_id] = decisions[at][rank]
    return latest


def import_field_labels(exports: Sequence[Path], out_dir: Path, overwrite: bool = False) -> FieldReport:
    """Cut the reviewed truck cases of ``exports`` (oldest first) into ``out_dir``."""
    if not exports:
        raise DatasetError("no export folder given")
    _prepare(out_dir, overwrite)
    report = FieldReport(out_dir=out_dir)
    sightings: list[Sighting] = []
    withdrawn: list[tuple[int, str, int]] = []
    for rank, folder in enumerate(exports):
        found, taken_back = read_export(folder, rank)
        sightings += found
        withdrawn += [(case_id, at, rank) for case_id, at in taken_back.items()]
    rows: list[dict[str, Any]] = []
    labels: list[tuple[str, str, str]] = []
    for case_id, frames in latest_decisions(sightings, withdrawn, report).items():
        report.cases += 1
        try:
            # Attributes ride on the frame the reviewer annotated; any frame carries the decision.
            label, how = load_label(
                next((f.record for f in frames if f.record.get("attributes")), frames[0].record)
            )
        except DatasetError as exc:
            report.problems.append(f"case {case_id}: {exc}; not imported")
            continue
        if label is None:
            report.skipped[how] += 1
            continue
        for k, sighting in enumerate(sorted(frames, key=lambda s: s.image.name)):
            crop_id = f"field_case{case_id}_{k}"
            try:
                row = _cut(sighting, crop_id, out_dir / "crops" / f"{crop_id}.jpg")
            except DatasetError as exc:
                report.problems.append(f"case {case_id}: {exc}")
                continue
            rows.append(row)
            labels.append((crop_id, label, f"field: {how}"))
            report.crops += 1
            report.labels[label] += 1
    _write_csv(out_dir / "manifest.csv", FIELD_COLUMNS, [[r[c] for c in FIELD_COLUMNS] for r in rows])
    _write_csv(out_dir / "labels_final.csv", ("crop_id", "label", "how"), labels)
    (out_dir / "field_import.json").write_text(
        json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8"
    )
    return report


def _prepare(out_dir: Path, overwrite: bool) -> None:
    ours = [out_dir / "manifest.csv", out_dir / "labels_final.csv", out_dir / "field_import.json"]
    if any(p.exists() for p in ours) or (out_dir / "crops").exists():
        if not overwrite:
            raise DatasetError(f"{out_dir} holds an earlier import; pass --overwrite to replace it")
        for p in ours:
            p.unlink(missing_ok=True)
        shutil.rmtree(out_dir / "crops", ignore_errors=True)
    (out_dir / "crops").mkdir(parents=True, exist_ok=True)


def _cut(sighting: Sighting, crop_id: str, target: Path) -> dict[str, Any]:
    """Cut the reviewed box out of the sighting's frame into ``target``; the manifest row."""
    path = sighting.image
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc}); frame skipped") from None
    named = _SHA256_NAME.search(path.stem)
    if named and hashlib.sha256(data).hexdigest() != named.group(1):
        raise DatasetError(
            f"{path}: its bytes do not match the SHA-256 it is named after (damaged?); frame skipped"
        )
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise DatasetError(f"{path}: not a readable image (corrupt or truncated); frame skipped")
    raw = sighting.record.get("box")
    if not raw or len(raw) != 4:
        raise DatasetError(f"{path}: the export names no box for the case (exported by an older version?)")
    image = np.asarray(decoded, dtype=np.uint8)
    height, width = image.shape[:2]
    x1, y1 = max(0, round(raw[0])), max(0, round(raw[1]))
    x2, y2 = min(width, round(raw[2])), min(height, round(raw[3]))
    if x2 - x1 < 2 or y2 - y1 < 2:
        raise DatasetError(f"{path}: box {raw} has no area inside the {width}x{height} frame")
    piece = crop(image, (x1, y1, x2, y2), CROP_MARGIN, max_side=100_000)
    if not cv2.imwrite(str(target), piece, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise DatasetError(f"{target}: could not be written")
    record = sighting.record
    return {
        "crop_id": crop_id,
        "source_split": SOURCE,
        "image": str(path.resolve()),
        "x1": x1, "y1": y1, "x2": x2, "y2": y2,
        "width": x2 - x1, "height": y2 - y1,
        "group": FIELD_GROUP_BASE + sighting.case_id,
        "source_class": "truck",
        "source": SOURCE,
        "case_id": sighting.case_id,
        "decision": record.get("decision") or "",
        "reviewer": record.get("reviewer") or "",
        "reviewed_at": sighting.reviewed_at,
        "export": str(sighting.export.resolve()),
    }  # fmt: skip


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def read_field_sources(folders: Sequence[Path]) -> tuple[list[LabelledCrop], dict[str, Path]]:
    """The trainable crops of field-label folders, and the folder holding each crop's image.

    They are dealt to train / val among themselves (``mined``: they never move the vehicle set's
    crops), by case, so a model's earlier val crops stay its val crops.
    """
    crops: list[LabelledCrop] = []
    where: dict[str, Path] = {}
    for folder in folders:
        groups = {r.crop_id: r.group for r in read_manifest(folder / "manifest.csv")}
        for crop_id, label in sorted(read_labels(folder / "labels_final.csv").items()):
            if crop_id not in groups:
                raise DatasetError(
                    f"{folder}: label for crop {crop_id}, which its manifest.csv does not list"
                )
            if crop_id in where:
                raise DatasetError(f"{folder}: crop {crop_id} is also in {where[crop_id].parent}")
            if label in LABEL_TO_CLASS:
                crops.append(
                    LabelledCrop(crop_id, LABEL_TO_CLASS[label], groups[crop_id], SOURCE, SOURCE, True)
                )
                where[crop_id] = folder / "crops"
    return crops, where


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", type=Path, nargs="+", help="from-reviews export folders, oldest first")
    parser.add_argument(
        "--out", type=Path, required=True, help="where crops/, manifest.csv, labels_final.csv go"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier import in --out")
    args = parser.parse_args(argv)
    try:
        report = import_field_labels(args.exports, args.out, overwrite=args.overwrite)
    except DatasetError as exc:
        print(f"field labels: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())

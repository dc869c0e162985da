"""Load-level scoring of ``unsealed_truck``: are the box's truck cases open loads?

``bench.case_scoring`` asks "is it a truck" (the detector's question). The product ships the
answer of the load stage after it: an open load raises a case, an unsure answer a candidate,
anything else nothing. This module scores those answers against the team's own load labels
(``datasets/truck_load``: ``manifest.csv`` maps each crop to its photo and box,
``labels_final.csv`` gives its class, ``split.csv`` the load model's own train / val split).

Pure functions, no models: ``bench.case_precision`` runs the box and hands over, per photo, every
truck the detector reported with what the load stage did to it (:class:`TruckReport`).

* A report is *on* a labelled truck when IoU >= 0.5 (the truck rule of ``case_scoring``).
* An *open load* is ``open_bed_uncovered`` or ``partly_covered`` (both raise the same case).
* Precision of cases: cases on an open-load truck / cases. Recall: open-load trucks with a case or
  a candidate on them / open-load trucks (and with a case alone).
* Only photos with load labels count (the vehicle set); trucks elsewhere have none.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edge.geometry import iou

Box = tuple[float, float, float, float]

#: Protocol classes that raise a case (datasets/truck_load/PROTOCOL.md).
OPEN_LOADS = frozenset({"open_bed_uncovered", "partly_covered"})
#: What the box did with one confirmed truck; "too_far": nothing sent, unasked (the stage's min_side_px).
OUTCOMES = ("case", "candidate", "silenced", "too_far")
MATCH_IOU = 0.5


@dataclass(frozen=True)
class LoadLabel:
    """One labelled truck box of a photo: its protocol class and the load model's split for it."""

    box: Box
    load: str
    #: "train" / "val" in the load model's split; None for crops it never trained on (unclear).
    model_split: str | None

    @property
    def is_open(self) -> bool:
        return self.load in OPEN_LOADS


@dataclass(frozen=True)
class TruckReport:
    """A truck the detector confirmed (a ``new`` event before the load stage) and its outcome."""

    box: Box
    outcome: str  # one of OUTCOMES


def read_load_labels(folder: Path, source_split: str = "val") -> dict[str, list[LoadLabel]]:
    """Labelled truck boxes per photo file name (e.g. ``vnv_102_jpg.jpg``) of one source split."""
    labels = {r["crop_id"]: r["label"] for r in _rows(folder / "labels_final.csv")}
    model_split = {r["crop_id"]: r["split"] for r in _rows(folder / "split.csv")}
    found: dict[str, list[LoadLabel]] = {}
    for row in _rows(folder / "manifest.csv"):
        if row["source_split"] != source_split:
            continue
        crop_id = row["crop_id"]
        if crop_id not in labels:
            raise ValueError(f"{folder / 'labels_final.csv'}: no label for crop {crop_id} of manifest.csv")
        box = (float(row["x1"]), float(row["y1"]), float(row["x2"]), float(row["y2"]))
        photo = Path(row["image"]).name
        found.setdefault(photo, []).append(LoadLabel(box, labels[crop_id], model_split.get(crop_id)))
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@dataclass
class LoadScore:
    """The load-level figures over all photos with load labels."""

    photos: int = 0
    #: Open-load trucks labelled in those photos, and of them, held out by the load model.
    open_loads: int = 0
    open_loads_held_out: int = 0
    cases: int = 0
    cases_on_open: int = 0
    candidates: int = 0
    candidates_on_open: int = 0
    silenced: int = 0
    too_far: int = 0
    open_with_case: int = 0
    open_with_case_or_candidate: int = 0
    #: Open loads the detector reported but the load stage silenced or found too far to judge (the
    #: error that loses a case).
    open_silenced: int = 0
    #: Labelled trucks by protocol class -> what happened to them (OUTCOMES, or "not reported").
    by_label: dict[str, Counter[str]] = field(default_factory=dict)
    #: Reports on no labelled truck (a vehicle the source leaves unlabelled, or not a truck), by outcome.
    unlabelled: Counter[str] = field(default_factory=Counter)

    @property
    def precision(self) -> float | None:
        return self.cases_on_open / self.cases if self.cases else None

    @property
    def recall(self) -> float | None:
        return self.open_with_case_or_candidate / self.open_loads if self.open_loads else None

    @property
    def recall_cases(self) -> float | None:
        return self.open_with_case / self.open_loads if self.open_loads else None

    def as_dict(self) -> dict[str, object]:
        return {
            "photos": self.photos,
            "open_loads": self.open_loads,
            "open_loads_held_out_by_load_model": self.open_loads_held_out,
            "cases": self.cases,
            "cases_on_open_load": self.cases_on_open,
            "candidates": self.candidates,
            "candidates_on_open_load": self.candidates_on_open,
            "silenced": self.silenced,
            "too_far_to_judge": self.too_far,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "recall_cases_only": _round(self.recall_cases),
            "open_loads_silenced": self.open_silenced,
            "by_label": {k: dict(sorted(v.items())) for k, v in sorted(self.by_label.items())},
            "unlabelled_reports": dict(sorted(self.unlabelled.items())),
        }


def score_loads(
    labels: Mapping[str, Sequence[LoadLabel]], reports: Mapping[str, Iterable[TruckReport]]
) -> LoadScore:
    """Score the truck reports of each labelled photo (keys: photo file names) against its load labels."""
    out = LoadScore()
    for photo, photo_labels in labels.items():
        out.photos += 1
        photo_reports = list(reports.get(photo, ()))
        for report in photo_reports:
            on = [lab for lab in photo_labels if iou(report.box, lab.box) >= MATCH_IOU]
            on_open = any(lab.is_open for lab in on)
            if report.outcome == "case":
                out.cases += 1
                out.cases_on_open += on_open
            elif report.outcome == "candidate":
                out.candidates += 1
                out.candidates_on_open += on_open
            elif report.outcome == "too_far":
                out.too_far += 1
            else:
                out.silenced += 1
            if not on:
                out.unlabelled[report.outcome] += 1
        for label in photo_labels:
            outcomes = {r.outcome for r in photo_reports if iou(r.box, label.box) >= MATCH_IOU}
            # One word per truck: the most the box did about it (a case beats a candidate beats silence).
            seen = next((o for o in OUTCOMES if o in outcomes), "not reported")
            out.by_label.setdefault(label.load, Counter())[seen] += 1
            if not label.is_open:
                continue
            out.open_loads += 1
            out.open_loads_held_out += label.model_split == "val"
            out.open_with_case += "case" in outcomes
            out.open_with_case_or_candidate += bool(outcomes & {"case", "candidate"})
            out.open_silenced += seen in ("silenced", "too_far")
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

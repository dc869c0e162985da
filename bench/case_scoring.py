"""Scoring of a box's reported violations against labelled photos: what a dispatcher would see.

Pure functions, no models and no photos: ``bench.case_precision`` runs a box config over
labelled photos and hands the ``new`` events of each photo here.

A reported violation is *right* when it sits on a labelled object of its type, by the type's
own rule (:data:`MATCH_RULES`):

* ``garbage_overflow``: a ``garbage`` or ``overflow`` label with IoU >= 0.3, or at least half of
  the reported box inside the label (a pile is often labelled in parts, reported whole or the
  other way round);
* ``illegal_signboard``: a ``signboard`` label with IoU >= 0.3;
* ``unsealed_truck``: a ``truck`` label with IoU >= 0.5 (a wrong vehicle next to a truck must
  not count);
* ``street_vending``: a ``vendor`` label with IoU >= 0.3; none of the photos has one, so every
  vending report is wrong.

Precision is right reports / reports; recall is labelled objects matched by at least one
report / labelled objects. Either is ``None`` when its denominator is zero.

A label may be an *ignore* box (``Label.ignore``; ``datasets/label_completion/PROTOCOL.md``:
objects too small to judge, or that the labeller could not call either way), the usual
crowd/ignore handling of detection benchmarks: a report that matches no label but matches an
ignore box by its type's rule counts neither right nor wrong (it leaves the precision's
denominator; ``TypeScore.ignored`` counts it), and an ignore box never counts in recall.

Recall is also counted by the labelled object's size (``TypeScore.by_size``: the square root of
its box's area in photo pixels, in the bands of :data:`SIZE_EDGES`): where the misses are, small
far objects or large near ones, says which lever (input size, tiles, labels) can lift it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from edge.geometry import iou
from streetwatch.events import ViolationType

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in photo pixels

#: Upper edges of the size bands recall is broken down by (square root of the area, photo pixels).
SIZE_EDGES = (32, 64, 96, 160)


def size_band(box: Box) -> str:
    """The size band of a box: ``"<32"``, ``"32-64"``, ..., ``">=160"`` (square root of its area)."""
    side = math.sqrt(_area(box))
    low = 0
    for edge in SIZE_EDGES:
        if side < edge:
            return f"<{edge}" if low == 0 else f"{low}-{edge}"
        low = edge
    return f">={SIZE_EDGES[-1]}"


def size_bands() -> list[str]:
    """Every band, smallest first."""
    middle = [f"{a}-{b}" for a, b in pairwise(SIZE_EDGES)]
    return [f"<{SIZE_EDGES[0]}", *middle, f">={SIZE_EDGES[-1]}"]


@dataclass(frozen=True)
class MatchRule:
    """Which labels a report of one violation type may sit on, and how well it must overlap one."""

    label_classes: frozenset[str]
    min_iou: float
    #: Also right when this share of the reported box lies inside the label (None: IoU only).
    min_inside: float | None = None

    def matches(self, reported: Box, label: Box) -> bool:
        if iou(reported, label) >= self.min_iou:
            return True
        return self.min_inside is not None and inside_share(reported, label) >= self.min_inside


MATCH_RULES: dict[ViolationType, MatchRule] = {
    ViolationType.garbage_overflow: MatchRule(frozenset({"garbage", "overflow"}), 0.3, min_inside=0.5),
    ViolationType.illegal_signboard: MatchRule(frozenset({"signboard"}), 0.3),
    ViolationType.unsealed_truck: MatchRule(frozenset({"truck"}), 0.5),
    ViolationType.street_vending: MatchRule(frozenset({"vendor"}), 0.3),
}


@dataclass(frozen=True)
class Label:
    class_name: str
    box: Box
    #: An ignore box: a report on it counts neither right nor wrong; never counted in recall.
    ignore: bool = False


@dataclass(frozen=True)
class Report:
    """One ``new`` event as the scoring sees it: its type and its box."""

    violation_type: ViolationType
    box: Box
    score: float | None = None  # the event's confirmed score (bench.thresholds sweeps it)
    detector_class: str = ""


@dataclass(frozen=True)
class PhotoResult:
    """One photo: its labels and the violations the box reported on it."""

    photo: str
    labels: Sequence[Label]
    reports: Sequence[Report]


@dataclass
class TypeScore:
    """Counts for one violation type over all photos."""

    reports: int = 0
    right: int = 0
    labelled: int = 0
    found: int = 0
    #: Reports on an ignore box only: left out of ``reports`` (neither right nor wrong).
    ignored: int = 0
    #: Photos with at least one wrong report (for looking at them).
    wrong_on: list[str] = field(default_factory=list)
    #: Photos with at least one labelled object no report matched.
    missed_on: list[str] = field(default_factory=list)
    #: Labelled and found objects per size band (:func:`size_band`).
    labelled_by_size: Counter[str] = field(default_factory=Counter)
    found_by_size: Counter[str] = field(default_factory=Counter)

    @property
    def precision(self) -> float | None:
        return self.right / self.reports if self.reports else None

    @property
    def recall(self) -> float | None:
        return self.found / self.labelled if self.labelled else None

    def by_size(self) -> dict[str, dict[str, object]]:
        """Per size band (smallest first, bands without labels left out): labelled, found, recall."""
        out: dict[str, dict[str, object]] = {}
        for band in size_bands():
            labelled, found = self.labelled_by_size[band], self.found_by_size[band]
            if labelled:
                out[band] = {"labelled": labelled, "found": found, "recall": _round(found / labelled)}
        return out

    def as_dict(self) -> dict[str, object]:
        return {
            "reports": self.reports,
            "right": self.right,
            "labelled": self.labelled,
            "found": self.found,
            "ignored": self.ignored,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
        }


def score(
    photos: Iterable[PhotoResult], rules: Mapping[ViolationType, MatchRule] = MATCH_RULES
) -> dict[ViolationType, TypeScore]:
    """Per-type precision and recall of the reports on ``photos``."""
    scores = {vt: TypeScore() for vt in rules}
    for photo in photos:
        for vtype, rule in rules.items():
            _score_photo(photo, vtype, rule, scores[vtype])
    return scores


def _score_photo(photo: PhotoResult, vtype: ViolationType, rule: MatchRule, out: TypeScore) -> None:
    mine = [lab for lab in photo.labels if lab.class_name in rule.label_classes]
    labels = [lab.box for lab in mine if not lab.ignore]
    ignores = [lab.box for lab in mine if lab.ignore]
    reports = []
    for r in (r.box for r in photo.reports if r.violation_type == vtype):
        if not any(rule.matches(r, lab) for lab in labels) and any(rule.matches(r, ig) for ig in ignores):
            out.ignored += 1  # on an ignore box only: neither right nor wrong
        else:
            reports.append(r)
    right = sum(any(rule.matches(r, lab) for lab in labels) for r in reports)
    found = 0
    for lab in labels:
        band = size_band(lab)
        out.labelled_by_size[band] += 1
        if any(rule.matches(r, lab) for r in reports):
            found += 1
            out.found_by_size[band] += 1
    out.reports += len(reports)
    out.right += right
    out.labelled += len(labels)
    out.found += found
    if right < len(reports):
        out.wrong_on.append(photo.photo)
    if found < len(labels):
        out.missed_on.append(photo.photo)


def inside_share(inner: Box, outer: Box) -> float:
    """The share of ``inner``'s area that lies inside ``outer``."""
    area = _area(inner)
    return _intersection(inner, outer) / area if area > 0 else 0.0


def _intersection(a: Box, b: Box) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return max(0.0, w) * max(0.0, h)


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def table(scores: Mapping[ViolationType, TypeScore]) -> str:
    """A Markdown table: one row per violation type."""
    lines = [
        "| type | reports | right | precision | labelled | found | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for vtype, s in scores.items():
        lines.append(
            f"| {vtype.value} | {s.reports} | {s.right} | {_fmt(s.precision)} | {s.labelled} | {s.found} "
            f"| {_fmt(s.recall)} |"
        )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"

"""Agreement between two labelling passes, and the final labels once disagreements are resolved.

Cohen's kappa says how much more the passes agree than chance would; per class it is computed
one-vs-rest (this class or not), which shows which classes the protocol defines well.

    python -m training.truck_load.agreement datasets/truck_load            # report
    python -m training.truck_load.agreement datasets/truck_load --write    # + labels_final.csv
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from streetwatch.errors import DatasetError

#: The protocol's classes (datasets/truck_load/PROTOCOL.md), in the order reports list them.
CLASSES = (
    "open_bed_uncovered",
    "partly_covered",
    "covered",
    "open_bed_empty",
    "closed_body",
    "not_a_truck",
    "unclear",
)


def read_labels(path: Path) -> dict[str, str]:
    """``crop_id -> label`` from a ``crop_id,label`` CSV; an unknown label is an error naming the row."""
    labels: dict[str, str] = {}
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), 2):
            label = row.get("label", "")
            if label not in CLASSES:
                raise DatasetError(f"{path}:{number}: unknown label {label!r}; expected one of {CLASSES}")
            labels[row["crop_id"]] = label
    return labels


def cohen_kappa(first: Sequence[str], second: Sequence[str]) -> float:
    """Cohen's kappa of two equally long label sequences (1 = perfect, 0 = chance)."""
    if len(first) != len(second) or not first:
        raise ValueError("kappa needs two non-empty label sequences of the same length")
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / n
    count_a, count_b = Counter(first), Counter(second)
    expected = sum(count_a[c] * count_b[c] for c in set(count_a) | set(count_b)) / (n * n)
    if expected == 1.0:
        return 1.0
    return (observed - expected) / (1.0 - expected)


@dataclass(frozen=True)
class AgreementReport:
    crops: int
    agreed: int
    kappa: float
    per_class: dict[str, dict[str, float | int]]  # class -> pass1/pass2 counts, both, kappa
    disagreements: list[tuple[str, str, str]]  # crop_id, pass 1, pass 2

    def as_dict(self) -> dict[str, object]:
        return {
            "crops": self.crops,
            "agreed": self.agreed,
            "agreement": round(self.agreed / self.crops, 4),
            "kappa": round(self.kappa, 4),
            "per_class": self.per_class,
            "disagreements": len(self.disagreements),
        }


def compare(first: Mapping[str, str], second: Mapping[str, str]) -> AgreementReport:
    if set(first) != set(second):
        missing = sorted(set(first) ^ set(second))[:5]
        raise DatasetError(f"the passes label different crops, e.g. {missing}")
    ids = sorted(first)
    a = [first[i] for i in ids]
    b = [second[i] for i in ids]
    per_class: dict[str, dict[str, float | int]] = {}
    for name in CLASSES:
        in_a = [x == name for x in a]
        in_b = [x == name for x in b]
        both = sum(x and y for x, y in zip(in_a, in_b, strict=True))
        kappa = cohen_kappa([str(x) for x in in_a], [str(x) for x in in_b]) if any(in_a + in_b) else 1.0
        per_class[name] = {"pass1": sum(in_a), "pass2": sum(in_b), "both": both, "kappa": round(kappa, 4)}
    disagreements = [(i, x, y) for i, x, y in zip(ids, a, b, strict=True) if x != y]
    return AgreementReport(
        len(ids), len(ids) - len(disagreements), cohen_kappa(a, b), per_class, disagreements
    )


def final_labels(
    first: Mapping[str, str], second: Mapping[str, str], resolution: Path
) -> dict[str, tuple[str, str]]:
    """``crop_id -> (label, how)``: the passes' label where they agree, else the recorded resolution."""
    resolved: dict[str, str] = {}
    with resolution.open(newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), 2):
            crop_id, final = row["crop_id"], row["final"]
            if final not in CLASSES:
                raise DatasetError(f"{resolution}:{number}: unknown final label {final!r}")
            if (row["pass1"], row["pass2"]) != (first.get(crop_id), second.get(crop_id)):
                raise DatasetError(
                    f"{resolution}:{number}: {crop_id}'s pass labels do not match the pass files"
                )
            resolved[crop_id] = final
    out: dict[str, tuple[str, str]] = {}
    for crop_id in sorted(first):
        if first[crop_id] == second[crop_id]:
            out[crop_id] = (first[crop_id], "agreed")
        elif crop_id in resolved:
            out[crop_id] = (resolved[crop_id], "resolved")
        else:
            raise DatasetError(f"{crop_id}: the passes disagree and {resolution} has no resolution for it")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="holds labels_pass1.csv, labels_pass2.csv, resolution.csv")
    parser.add_argument("--write", action="store_true", help="write labels_final.csv and agreement.json")
    parser.add_argument("--disagreements", type=Path, help="write the disagreeing crops to this CSV")
    args = parser.parse_args(argv)
    first = read_labels(args.folder / "labels_pass1.csv")
    second = read_labels(args.folder / "labels_pass2.csv")
    report = compare(first, second)
    share = report.agreed / report.crops
    print(f"{report.crops} crops, {report.agreed} agreed ({share:.1%}), kappa {report.kappa:.3f}")
    for name, row in report.per_class.items():
        counts = f"pass1 {row['pass1']:4d}  pass2 {row['pass2']:4d}  both {row['both']:4d}"
        print(f"  {name:20s} {counts}  kappa {row['kappa']:.3f}")
    if args.disagreements:
        with args.disagreements.open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("crop_id", "pass1", "pass2"))
            writer.writerows(report.disagreements)
    if args.write:
        labels = final_labels(first, second, args.folder / "resolution.csv")
        with (args.folder / "labels_final.csv").open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(("crop_id", "label", "how"))
            writer.writerows((crop_id, label, how) for crop_id, (label, how) in labels.items())
        summary = report.as_dict()
        summary["final_counts"] = dict(Counter(label for label, _ in labels.values()).most_common())
        (args.folder / "agreement.json").write_text(json.dumps(summary, indent=2) + "\n")
        print("final:", summary["final_counts"])


if __name__ == "__main__":
    main()

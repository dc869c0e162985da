"""A labelling pass's answers to CSV, the agreement of two passes, and the final completion.

Answers are one line per sheet cell, ``CELL: step; step; ...`` (``-`` for nothing to add):
``acc N`` accepts proposal N as drawn, ``ignp N`` takes it as an ignore box, ``add x1 y1 x2 y2``
and ``ign x1 y1 x2 y2`` add a box read off the grid, ``not x1 y1 x2 y2`` names a source label
that is not the class, ``notl N`` names the sheet's source label ``L<N>`` so (its own class),
and ``add:truck ...`` (``acc:overflow N``, ...) gives a box another class: a truck seen on a
signboard task, an overflowing bin on a pile task. An added box under 32 x 32 px becomes
``ignore`` here, mechanically (PROTOCOL.md, "Too small").

``garbage`` and ``overflow`` boxes are compared as one class (:data:`SCORED_ALIKE`): the bench
scores a ``garbage_overflow`` report against either, so two passes that box the same pile, one
as loose garbage and one as an overflowing bin, agree; ``class_differs`` counts such pairs.

    python -m training.label_completion.passes answers work/pass2/index.json work/pass2.txt pass2.csv
    python -m training.label_completion.passes agreement pass1.csv pass2.csv agreement.json
    python -m training.label_completion.passes final pass1.csv pass2.csv resolution.csv completion.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.case_scoring import MATCH_RULES
from edge.geometry import iou

Box = tuple[float, float, float, float]
MIN_AREA = 32 * 32
MATCH_IOU = 0.5
#: Classes compared as one by agreement and final, each mapped to one name of its group: those one
#: of the bench's rules takes alike (garbage_overflow: ``overflow`` -> ``garbage``). Read off the
#: rules, so that labels are compared the way reports on them are scored.
SCORED_ALIKE = {
    cls: min(rule.label_classes)
    for rule in MATCH_RULES.values()
    for cls in rule.label_classes
    if cls != min(rule.label_classes)
}
COLUMNS = ("photo", "class", "x1", "y1", "x2", "y2", "kind")


@dataclass(frozen=True)
class Row:
    photo: str
    class_name: str
    box: Box
    kind: str

    def csv(self) -> list[object]:
        return [self.photo, self.class_name, *(round(v, 1) for v in self.box), self.kind]


def parse_answers(index: dict[str, list[object]], lines: Sequence[str]) -> list[Row]:
    """The pass's rows from its answer lines; every cell of the index must be answered once."""
    rows: list[Row] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        cell, _, rest = line.partition(":")
        cell = cell.strip()
        if cell not in index or cell in seen:
            raise ValueError(f"line {number}: {cell!r} is not a sheet cell, or answered twice")
        seen.add(cell)
        photo, cls = str(index[cell][0]), str(index[cell][1])
        proposals, labels = index[cell][3], index[cell][4] if len(index[cell]) > 4 else []
        assert isinstance(proposals, list) and isinstance(labels, list)
        for step in (s.strip() for s in rest.split(";")):
            if step in ("", "-"):
                continue
            verb, *args = step.split()
            verb, _, other = verb.partition(":")
            if verb in ("acc", "ignp"):
                box = _box(proposals[int(args[0])][:4])
                kind = "added" if verb == "acc" else "ignore"
            elif verb in ("add", "ign", "not"):
                box = _box(args)
                kind = {"add": "added", "ign": "ignore", "not": f"not_a_{other or cls}"}[verb]
            elif verb == "notl":  # source label L<N> of the sheet: not one object of its class
                if not 0 <= int(args[0]) < len(labels):
                    raise ValueError(f"line {number}: {cell} has no source label L{args[0]}")
                other, box = str(labels[int(args[0])][0]), _box(labels[int(args[0])][1:])
                kind = f"not_a_{other}"
            else:
                raise ValueError(f"line {number}: unknown step {step!r}")
            if kind == "added" and (box[2] - box[0]) * (box[3] - box[1]) < MIN_AREA:
                kind = "ignore"
            rows.append(Row(photo, other or cls, box, kind))
    missing = sorted(set(index) - seen)
    if missing:
        raise ValueError(f"cells not answered: {', '.join(missing[:10])}")
    return sorted(rows, key=lambda r: r.csv())


def _box(values: Sequence[object]) -> Box:
    x1, y1, x2, y2 = (float(str(v)) for v in values[:4])
    return (x1, y1, x2, y2)


def read_rows(path: Path) -> list[Row]:
    with path.open(newline="") as f:
        return [
            Row(r["photo"], r["class"], _box([r["x1"], r["y1"], r["x2"], r["y2"]]), r["kind"])
            for r in csv.DictReader(f)
        ]


def write_rows(path: Path, rows: Sequence[Row]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(r.csv() for r in sorted(rows, key=lambda r: r.csv()))


def match(a: Sequence[Row], b: Sequence[Row]) -> list[tuple[int, int]]:
    """One-to-one pairs of boxes at IoU >= 0.5, greedily from the highest IoU."""
    pairs = sorted(
        ((iou(x.box, y.box), i, j) for i, x in enumerate(a) for j, y in enumerate(b)), reverse=True
    )
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for value, i, j in pairs:
        if value < MATCH_IOU:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def _grouped(rows: Sequence[Row]) -> dict[tuple[str, str], list[Row]]:
    out: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in rows:
        out[(row.photo, SCORED_ALIKE.get(row.class_name, row.class_name))].append(row)
    return out


def agreement(first: Sequence[Row], second: Sequence[Row]) -> dict[str, object]:
    """Per ``<set>/<class>``: boxes per pass, matched, same kind, kind differs, only in one pass;
    and every disagreement."""
    a, b = _grouped(first), _grouped(second)
    keys = ("pass1", "pass2", "matched", "same_kind", "kind_differs", "only_pass1", "only_pass2",
            "class_differs")  # fmt: skip
    stats: dict[str, Counter[str]] = defaultdict(Counter)
    disagreements: list[dict[str, object]] = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, []), b.get(key, [])
        s = stats[f"{key[0].split('/')[0]}/{key[1]}"]
        s["pass1"] += len(x)
        s["pass2"] += len(y)
        pairs = match(x, y)
        s["matched"] += len(pairs)
        for i, j in pairs:
            same = x[i].kind == y[j].kind
            s["same_kind" if same else "kind_differs"] += 1
            s["class_differs"] += x[i].class_name != y[j].class_name
            if not same:  # the class the rows name (a pile pair: pass 1's)
                disagreements.append(
                    {
                        "photo": key[0],
                        "class": x[i].class_name,
                        "pass1": x[i].csv()[2:],
                        "pass2": y[j].csv()[2:],
                    }
                )
        for i in set(range(len(x))) - {i for i, _ in pairs}:
            s["only_pass1"] += 1
            disagreements.append(
                {"photo": key[0], "class": x[i].class_name, "pass1": x[i].csv()[2:], "pass2": None}
            )
        for j in set(range(len(y))) - {j for _, j in pairs}:
            s["only_pass2"] += 1
            disagreements.append(
                {"photo": key[0], "class": y[j].class_name, "pass1": None, "pass2": y[j].csv()[2:]}
            )
    total = Counter[str]()
    for s in stats.values():
        total.update(s)
    boxes = total["matched"] + total["only_pass1"] + total["only_pass2"]
    return {
        "match_iou": MATCH_IOU,
        "total": {k: total[k] for k in keys},
        "agreement_rate": round(total["same_kind"] / boxes, 3) if boxes else None,
        "by_set_class": {name: {k: s[k] for k in keys} for name, s in sorted(stats.items())},
        "disagreements": disagreements,
    }


def final(first: Sequence[Row], second: Sequence[Row], resolutions: Sequence[dict[str, str]]) -> list[Row]:
    """Boxes both passes agree on (box and kind; pass-1 coordinates), then each resolution's final
    box replacing any agreed box it overlaps (IoU >= 0.5: a duplicate), and its ``not_a`` rows."""
    a, b = _grouped(first), _grouped(second)
    rows = [a[key][i] for key in sorted(set(a) & set(b)) for i, j in match(a[key], b[key])
            if a[key][i].kind == b[key][j].kind]  # fmt: skip
    decided = [
        Row(r["photo"], r["class"], _box(r["final_box"].split()), r["final_kind"])
        for r in resolutions
        if r["final_kind"]
    ]
    for d in decided:
        if not d.kind.startswith("not_a_"):
            rows = [r for r in rows if not _duplicate(r, d)]
    return sorted([*rows, *decided], key=lambda r: r.csv())


def scored_alike(a: str, b: str) -> bool:
    """Two classes the bench scores a report against alike (``garbage`` and ``overflow``)."""
    return SCORED_ALIKE.get(a, a) == SCORED_ALIKE.get(b, b)


def _duplicate(row: Row, decided: Row) -> bool:
    """A row the decided box replaces: the same photo, a class scored alike, IoU >= MATCH_IOU."""
    alike = scored_alike(row.class_name, decided.class_name)
    return row.photo == decided.photo and alike and iou(row.box, decided.box) >= MATCH_IOU


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("answers", help="a pass's answer lines to its CSV")
    p.add_argument(
        "index", type=Path, nargs="+", help="the pass's index.json file(s), then the answers and the CSV"
    )
    p = sub.add_parser("agreement", help="agreement of two passes as JSON")
    p.add_argument("pass1", type=Path)
    p.add_argument("pass2", type=Path)
    p.add_argument("out", type=Path)
    p = sub.add_parser("final", help="the completion: agreed boxes and resolutions")
    p.add_argument("pass1", type=Path)
    p.add_argument("pass2", type=Path)
    p.add_argument("resolution", type=Path)
    p.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "answers":
            *indexes, answers, out = args.index
            index: dict[str, list[object]] = {}
            for path in indexes:
                index.update(json.loads(path.read_text()))
            rows = parse_answers(index, answers.read_text().splitlines())
            write_rows(out, rows)
            print(f"{out}: {len(rows)} boxes", dict(Counter(r.kind for r in rows)))
        elif args.command == "agreement":
            result = agreement(read_rows(args.pass1), read_rows(args.pass2))
            args.out.write_text(json.dumps(result, indent=1))
            print(result["total"], result["agreement_rate"])
        else:
            with args.resolution.open(newline="") as f:
                resolutions = list(csv.DictReader(f))
            rows = final(read_rows(args.pass1), read_rows(args.pass2), resolutions)
            write_rows(args.out, rows)
            print(f"{args.out}: {len(rows)} boxes")
    except (ValueError, KeyError, IndexError, FileNotFoundError) as exc:
        print(f"passes: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

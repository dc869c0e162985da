"""Which rule thresholds to ship: one low-threshold run of a box config, every threshold read off
it, and each choice scored on photos it was not chosen on.

    python -m bench.thresholds [--config deploy/edge.demo.yaml] [--floor 0.2] [--json]

A rule's ``min_score`` read off the same photos its precision is then reported on flatters it:
the threshold fits those photos' noise. This runs the box once over the case bench's photos
(``bench.case_precision``: the same sets, frames per photo and completed labels) with every
gate before the rules lowered to ``--floor`` (each rule's ``min_score``, the class map's own
``min_score`` by the same amount, ``fusion.conf``), and keeps each ``new`` event's score. With a
photo held still every frame gives its object the same score, and an event's score is the median
of its track's hits, so the events scoring at least ``t`` are the ones the box raises with the
threshold at ``t`` (a class map entry that asks more than its rule keeps asking that much more).
The sweep starts at the tracker's ``new_track_thresh`` when that is higher than ``--floor``: no
track starts on a weaker box, so lower thresholds give the same events.

Per violation type it prints precision and recall at each threshold (against the completed
labels; trucks as the box keeps them, less those its load stage called not a truck), and a
*choice*: the threshold with the highest recall whose precision meets the type's target
(``--target``; the issue's targets by default). The choice is made on each half of the photos (a
hash of the photo's name) and scored on the other half; the sum of the two held-out halves is
what that way of choosing can be expected to give on photos it has not seen, and the spread of
the two halves' thresholds says how firm the choice is. Confirm a chosen config with
``bench.case_precision``. Without ``../shared/data`` it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.case_precision import (
    DEFAULT_CONFIG,
    add_photo_arguments,
    completed,
    fmt,
    load_photos,
    photo_sets,
    run_config,
)
from bench.case_scoring import PhotoResult, TypeScore, score
from bench.label_completion import COMPLETIONS, CompletionError, read_completions
from edge.config import DeviceConfig, load_config
from streetwatch.errors import StreetWatchError
from streetwatch.events import ViolationType

#: The precision each type must keep (the case bench's targets); the choice maximises recall under it.
TARGETS: dict[ViolationType, float] = {
    ViolationType.garbage_overflow: 0.90,
    ViolationType.illegal_signboard: 0.90,
    ViolationType.unsealed_truck: 0.85,
}
STEP = 0.025


@dataclass(frozen=True)
class Point:
    threshold: float
    precision: float | None
    recall: float | None
    reports: int


@dataclass(frozen=True)
class Choice:
    """A type's threshold chosen on all photos, and the same way of choosing scored held out."""

    target: float
    threshold: float | None  # None: no threshold meets the target on all photos
    half_thresholds: tuple[float | None, float | None]
    held_out: TypeScore


def lowered(config: DeviceConfig, floor: float) -> tuple[DeviceConfig, dict[str, float]]:
    """The config with every gate before the rules at ``floor``, and each class map entry's extra
    score over its rule (``detector_class -> extra``), which the sweep keeps asking."""
    extra: dict[str, float] = {}
    class_map = []
    for mapping in config.class_map:
        if mapping.min_score is not None:
            rule = config.rules[mapping.violation_type]
            extra[mapping.detector_class] = round(max(0.0, mapping.min_score - rule.min_score), 3)
            mapping = mapping.model_copy(
                update={"min_score": min(1.0, floor + extra[mapping.detector_class])}
            )
        class_map.append(mapping)
    rules = {
        vt: r.model_copy(update={"min_score": min(r.min_score, floor)}) for vt, r in config.rules.items()
    }
    fusion = config.fusion
    if fusion is not None:
        fusion = fusion.model_copy(update={"conf": min(fusion.conf, floor)})
    return config.model_copy(update={"class_map": class_map, "rules": rules, "fusion": fusion}), extra


def at_threshold(
    results: Sequence[PhotoResult], vtype: ViolationType, threshold: float, extra: dict[str, float]
) -> TypeScore:
    """``vtype``'s score with its reports below ``threshold`` (plus their class's extra) left out."""
    kept = [
        PhotoResult(
            r.photo,
            r.labels,
            [
                rep
                for rep in r.reports
                if rep.violation_type is vtype
                and _score(rep.score) >= threshold + extra.get(rep.detector_class, 0.0)
            ],
        )
        for r in results
    ]
    return score(kept)[vtype]


def _score(value: float | None) -> float:
    if value is None:
        raise ValueError("a report without a score: the sweep needs each event's score")
    return value


def grid(lowest: float) -> list[float]:
    """Thresholds from ``lowest`` to 0.9 in steps of :data:`STEP`."""
    steps = round((0.9 - lowest) / STEP)
    return [round(lowest + STEP * i, 3) for i in range(steps + 1)]


def sweep(
    results: Sequence[PhotoResult], vtype: ViolationType, thresholds: Sequence[float], extra: dict[str, float]
) -> list[Point]:
    points = []
    for t in thresholds:
        s = at_threshold(results, vtype, t, extra)
        points.append(Point(t, s.precision, s.recall, s.reports))
    return points


def best(points: Sequence[Point], target: float) -> float | None:
    """The threshold with the highest recall whose precision meets ``target`` (the lowest on a tie)."""
    meeting = [
        p for p in points if p.precision is not None and p.precision >= target and p.recall is not None
    ]
    if not meeting:
        return None
    top = max(p.recall for p in meeting if p.recall is not None)
    return min(p.threshold for p in meeting if p.recall == top)


def half_of(photo: str) -> int:
    """Which half a photo falls in: a hash of its name, the same on every run and machine."""
    return zlib.crc32(photo.encode()) % 2


def choose(
    results: Sequence[PhotoResult],
    vtype: ViolationType,
    target: float,
    thresholds: Sequence[float],
    extra: dict[str, float],
    half: Callable[[str], int] = half_of,
) -> Choice:
    held_out = TypeScore()
    picks: list[float | None] = []
    for k in (0, 1):
        choosing = [r for r in results if half(r.photo) != k]
        scoring = [r for r in results if half(r.photo) == k]
        pick = best(sweep(choosing, vtype, thresholds, extra), target)
        picks.append(pick)
        # No threshold met the target on the choosing half: the strictest one is what a user would try.
        s = at_threshold(scoring, vtype, thresholds[-1] if pick is None else pick, extra)
        held_out.reports += s.reports
        held_out.right += s.right
        held_out.labelled += s.labelled
        held_out.found += s.found
        held_out.ignored += s.ignored
    overall = best(sweep(results, vtype, thresholds, extra), target)
    return Choice(target, overall, (picks[0], picks[1]), held_out)


def report(
    results: Sequence[PhotoResult],
    lowest: float,
    targets: dict[ViolationType, float],
    extra: dict[str, float],
    asks: dict[ViolationType, float] | None = None,
) -> dict[str, object]:
    """Per type: the sweep from ``lowest`` up, the choice at its target precision, and what the
    config asks now (``asks``: each rule's ``min_score``), to set beside the choice."""
    thresholds = grid(lowest)
    out: dict[str, object] = {"lowest": lowest, "photos": len(results), "class_extra": extra, "types": {}}
    types = out["types"]
    assert isinstance(types, dict)
    for vtype, target in targets.items():
        choice = choose(results, vtype, target, thresholds, extra)
        types[vtype.value] = {
            "sweep": [asdict(p) for p in sweep(results, vtype, thresholds, extra)],
            "target_precision": target,
            "chosen_on_all_photos": choice.threshold,
            "chosen_on_each_half": list(choice.half_thresholds),
            "held_out": choice.held_out.as_dict(),
            "config_asks": (asks or {}).get(vtype),
        }
    return out


def print_report(result: dict[str, object]) -> None:
    types = result["types"]
    assert isinstance(types, dict)
    print(
        f"{result['photos']} photos, thresholds from {result['lowest']} "
        "(completed labels; trucks as the box keeps them)"
    )
    for vtype, part in types.items():
        print(f"\n{vtype} (target precision {part['target_precision']:.2f})")
        print("| threshold | reports | precision | recall |")
        print("|---|---|---|---|")
        for p in part["sweep"]:
            if round(p["threshold"] / 0.05, 3) % 1 == 0:  # every other step keeps the table short
                print(
                    f"| {p['threshold']:.3f} | {p['reports']} | {fmt(p['precision'])} | {fmt(p['recall'])} |"
                )
        held = part["held_out"]
        halves = ", ".join(fmt(t) for t in part["chosen_on_each_half"])
        print(
            f"choice: {fmt(part['chosen_on_all_photos'])} on all photos; on each half {halves}, "
            f"scored on the other half: precision {fmt(held['precision'])}, recall {fmt(held['recall'])} "
            f"({held['reports']} reports); the config asks {fmt(part['config_asks'])}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Rule thresholds read off one low-threshold run, chosen held out."
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="box config (default: the demo's)"
    )
    parser.add_argument(
        "--floor",
        type=float,
        default=0.2,
        help="lowest threshold swept (default 0.2; the tracker's new_track_thresh if higher)",
    )
    add_photo_arguments(parser)
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="TYPE=PRECISION",
        help="a type's target precision (repeatable; default: "
        + ", ".join(f"{k.value}={v}" for k, v in TARGETS.items())
        + ")",
    )
    parser.add_argument(
        "--completion",
        type=Path,
        action="append",
        help="a completion file scored against (repeatable; default: the team's signs and trucks, and piles)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if not 0.0 < args.floor < 0.9:
        parser.error("--floor must lie between 0 and 0.9")
    targets = dict(TARGETS)
    for item in args.target:
        name, _, value = item.partition("=")
        try:
            targets[ViolationType(name)] = precision = float(value)
            if not 0.0 < precision <= 1.0:
                raise ValueError(precision)
        except ValueError:
            parser.error(
                f"--target {item!r}: expected TYPE=PRECISION with 0 < PRECISION <= 1, "
                f"TYPE one of {', '.join(v.value for v in ViolationType)}"
            )
    sets = photo_sets(parser, args)
    if not args.data.is_dir():
        print(f"no labelled photos at {args.data} (../shared/data beside the checkout): nothing to measure")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        original = load_config(args.config)
        config, extra = lowered(original, args.floor)
        photos = load_photos(args.data, sets, args.limit, street_trucks=True)
        boxes = read_completions(args.completion or COMPLETIONS)  # refused before the long run if bad
    except (StreetWatchError, FileNotFoundError, CompletionError) as exc:
        print(f"thresholds: {exc}", file=sys.stderr)
        return 2
    run = run_config(config, photos, args.frames)
    # A track starts only on a box scoring new_track_thresh: below it every threshold gives the same events.
    start = max(args.floor, original.tracker.new_track_thresh)
    asks = {vtype: rule.min_score for vtype, rule in original.rules.items()}
    result = {
        "config": str(args.config),
        **report(completed(run.kept, boxes), start, targets, extra, asks),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

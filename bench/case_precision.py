"""Cases worth a dispatcher's look: per-type precision and recall of a box config on labelled photos.

    python -m bench.case_precision [--config deploy/edge.demo.yaml] [--frames 4] [--json]

Runs the box exactly as configured (its detectors, fusion, tracker, class_map and rules, through
``edge.pipeline.from_config``) over the validation photos of ``../shared/data`` (garbage,
signboards, vehicles; never the training photos), each photo held ``--frames`` frames like the
shipped replay, with a long pause between photos so no track, confirmation or cool-down carries
from one photo to the next. Every ``new`` event is scored against the labels of its photo
(``bench.case_scoring``): precision (reports on the right object) and recall (labelled objects
reported) per violation type.

Trucks are scored at three levels. The table's ``unsealed_truck`` is the detector level ("is it a
truck"): every truck the box confirmed, before its load stage, i.e. what the box reports with the
stage off. ``trucks_kept`` is the same question asked of the whole box: those trucks less the ones
its load stage called "not a truck" (a closed or covered truck is still a right truck here; the
stage silences it for its load, not for being no truck). ``truck_load`` in the output is the load
level, what the box ships: each confirmed truck became a case (open load), a candidate (unsure)
or nothing (silenced, or too far to judge and not asked), scored against the team's load labels
(``datasets/truck_load``, ``bench.load_scoring``) on the vehicle photos, the only ones with load
labels. Open loads are few there (a handful), so its figures are counts more than rates; the
output says how many.

The trucks that ``training/recipes/street_trucks.json`` lists (street-level trucks in the garbage
photos, which that source does not label, each checked by eye) are added as truck labels, so a
right street-level truck report is not counted wrong; ``--no-street-trucks`` leaves them out
(the labels as the sources give them), and ``street_trucks`` in the output says how many of
them were reported.

The sources leave objects unlabelled that a box rightly reports (signs in the garbage photos,
signs of a street front beside the labelled one, far trucks, the opposite carriageway) and never
count them as missed. ``--labels`` (default ``both``) also scores every report against the source
labels plus the team's completion of them (``datasets/label_completion``: boxes added by eye in two
passes, ignore boxes for objects too small to judge, read by ``bench.label_completion``);
``completed`` in the output has the same keys as the source-label figures. Precision and recall
against the completed labels count what is really in the photos; the source-label figures stay
for comparison with earlier measurements.

Prints a Markdown table, or one JSON object with ``--json``. ``--baseline OTHER.yaml`` runs a
second config over the same photos in the same run (e.g. the config as last shipped, from git)
and prints both with the change per type. Without ``../shared/data`` it says so and exits 0
(nothing to measure).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cv2
import numpy as np

from bench.case_scoring import Label, PhotoResult, Report, TypeScore, score, table
from bench.label_completion import COMPLETIONS, CompletionBox, CompletionError, complete, read_completions
from bench.load_scoring import LoadScore, TruckReport, read_load_labels, score_loads
from edge.config import DeviceConfig, load_config
from edge.evidence import EvidenceRecorder
from edge.frames import Frame
from edge.geometry import iou
from edge.interfaces import Evidence
from edge.pipeline import from_config
from edge.truck_load import LoadStage
from edge.truck_load.stage import LoadDecision
from streetwatch.errors import StreetWatchError
from streetwatch.events import Lifecycle, Position, TruckLoad, ViolationEvent, ViolationType

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
DEFAULT_CONFIG = REPO / "deploy" / "edge.demo.yaml"
STREET_TRUCKS = REPO / "training" / "recipes" / "street_trucks.json"
#: The team's truck load labels (datasets/truck_load/PROTOCOL.md): the load level's truth.
LOAD_LABELS = REPO / "datasets" / "truck_load"
TRUCK = ViolationType.unsealed_truck
#: The validation sets and their class names by label id (as the sources give them).
SETS: dict[str, tuple[str, ...]] = {
    "garbage": ("garbage", "garbage_bin", "overflow"),
    "signboards": ("signboard",),
    "vehicles": ("car", "motor", "truck", "bus"),
}
#: Seconds between two photos' frames: longer than any tracker timeout, end_after_s or cool-down a
#: config would sensibly set, so every photo starts with a fresh tracker and rule state.
PHOTO_GAP_S = 100_000.0
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Photo:
    name: str  # "<set>/<file>"
    path: Path
    labels: tuple[Label, ...]


def load_photos(
    data: Path, sets: Sequence[str], limit: int | None, street_trucks: bool, split: str = "val"
) -> list[Photo]:
    """The ``split`` photos of ``sets`` with their labels (polygons become boxes; the importer's rules)."""
    from training.datasets.importers.yolo import import_yolo

    extra = _street_trucks() if street_trucks else {}
    photos: list[Photo] = []
    for name in sets:
        names = SETS[name]
        folder = data / name / split
        if not (folder / "images").is_dir():
            what = "validation" if split == "val" else split
            raise FileNotFoundError(f"no {what} photos at {folder / 'images'}")
        imported = import_yolo(folder, source=name, mapping={n: n for n in names}, names=names)
        images = sorted(imported.images, key=lambda im: im.path.name)[:limit]
        for image in images:
            key = f"{name}/{image.path.name}"
            labels = [Label(b.class_name, (b.x1, b.y1, b.x2, b.y2)) for b in image.boxes]
            labels += [Label("truck", box) for box in extra.get(key, [])]
            photos.append(Photo(key, image.path, tuple(labels)))
    return photos


def _street_trucks() -> dict[str, list[tuple[float, float, float, float]]]:
    found: dict[str, list[tuple[float, float, float, float]]] = {}
    for entry in json.loads(STREET_TRUCKS.read_text()):
        # "garbage/val/images/x.jpg" -> "garbage/x.jpg"
        parts = Path(entry["image"]).parts
        x1, y1, x2, y2 = (float(v) for v in entry["box_xyxy"])
        found.setdefault(f"{parts[0]}/{parts[-1]}", []).append((x1, y1, x2, y2))
    return found


class HeldPhotos:
    """Each photo as ``frames`` consecutive frames, photos ``PHOTO_GAP_S`` apart (a frame source)."""

    def __init__(self, photos: Sequence[Photo], frames: int, interval_s: float) -> None:
        self.name = "case-precision"
        self._photos = photos
        self._frames = frames
        self._interval = interval_s
        self.unreadable: list[str] = []

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        for number, photo in enumerate(self._photos):
            image = cv2.imread(str(photo.path))
            if image is None:
                self.unreadable.append(photo.name)
                logging.getLogger(__name__).warning("photo %s cannot be read; skipped", photo.path)
                continue
            for k in range(self._frames):
                when = T0 + timedelta(seconds=number * PHOTO_GAP_S + k * self._interval)
                yield Frame(
                    image=np.asarray(image, dtype=np.uint8), timestamp=when, index=index, source=self.name
                )
                index += 1

    def close(self) -> None:
        pass


class NoPosition:
    """Photos have no GPS: events go out without a position, as on a box without a fix."""

    def position_at(self, when: datetime) -> Position | None:
        return None

    def close(self) -> None:
        pass


class RecordingLoadStage(LoadStage):
    """The config's load stage, also noting every confirmed truck before it and what it did to it.

    Before the stage is what the box would report with the stage off (the detector level); the
    stage's answer is what it ships (the load level). One run gives both.
    """

    def __init__(self, stage: LoadStage) -> None:
        super().__init__(stage.classifier, stage.config)
        # (the track's first event before the stage, outcome, the classifier's answer when it
        # silenced the truck)
        self.trucks: list[tuple[ViolationEvent, str, TruckLoad | None]] = []

    def _decided(self, event: ViolationEvent, decision: LoadDecision) -> None:
        if event.violation_type is not self.config.violation_type or event.lifecycle is not Lifecycle.new:
            return
        if decision.attributes is None:
            outcome = "too_far" if decision.too_small else "silenced"
        else:
            outcome = "case" if decision.attributes.load is TruckLoad.uncovered else "candidate"
        self.trucks.append((event, outcome, decision.silenced_as))


class CollectNew:
    """A sink that keeps the ``new`` events (the cases a dispatcher would be handed)."""

    def __init__(self) -> None:
        self.new: list[ViolationEvent] = []

    def emit(self, event: ViolationEvent, evidence: Evidence | None) -> None:
        if event.lifecycle is Lifecycle.new:
            self.new.append(event)

    def close(self) -> None:
        pass


def photo_of(event: ViolationEvent) -> int:
    """The photo number an event was raised on (its frames' times lie in that photo's slot)."""
    return int((event.observed_at - T0).total_seconds() // PHOTO_GAP_S)


@dataclass(frozen=True)
class Run:
    """One config over the photos: per photo, the detector-level reports (trucks before the load
    stage), and every confirmed truck with what the box did to it (case, candidate, silenced)."""

    results: list[PhotoResult]
    #: The same reports less the trucks the load stage called "not a truck": the trucks the box
    #: keeps as trucks (all of them without a stage).
    kept: list[PhotoResult]
    trucks: dict[str, list[TruckReport]]  # photo name -> trucks
    load_stage: bool
    seconds: float


def run_config(config: DeviceConfig, photos: Sequence[Photo], frames: int) -> Run:
    """Run the box over the photos; each photo's labels with the ``new`` events raised on it."""
    sink = CollectNew()
    source = HeldPhotos(photos, frames, config.source.image_interval_s)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="case-precision-") as tmp:
        evidence = EvidenceRecorder(config.evidence.model_copy(update={"directory": tmp}))
        pipeline = from_config(
            config, sink=sink, evidence=evidence, locator=NoPosition(), source=source, log_interval_s=1e9
        )
        recording = None
        if pipeline.load_stage is not None:
            recording = pipeline.load_stage = RecordingLoadStage(pipeline.load_stage)
        pipeline.run()
    elapsed = time.perf_counter() - started
    if recording is not None:  # trucks as the detector confirmed them, and the stage's outcome
        trucks = recording.trucks
        stage_type = recording.config.violation_type
        others = [e for e in sink.new if e.violation_type is not stage_type]
    else:  # no stage: every truck goes out as the class map says
        trucks = [
            (e, "candidate" if e.candidate else "case", None) for e in sink.new if e.violation_type is TRUCK
        ]
        others = [e for e in sink.new if e.violation_type is not TRUCK]
    not_trucks = {id(e) for e, _, answer in trucks if answer is TruckLoad.not_a_truck}
    every = [*others, *(e for e, _, _ in trucks)]
    by_photo: dict[str, list[TruckReport]] = {}
    for event, outcome, _ in trucks:
        by_photo.setdefault(photos[photo_of(event)].name, []).append(TruckReport(event.box, outcome))
    return Run(
        _per_photo(photos, every),
        _per_photo(photos, [e for e in every if id(e) not in not_trucks]),
        by_photo,
        recording is not None,
        elapsed,
    )


def _per_photo(photos: Sequence[Photo], events: Sequence[ViolationEvent]) -> list[PhotoResult]:
    """Each photo's labels with the reports of the events raised on it."""
    reports: dict[int, list[Report]] = {}
    for event in events:
        report = Report(event.violation_type, event.box, event.score, event.detector_class)
        reports.setdefault(photo_of(event), []).append(report)
    return [PhotoResult(p.name, p.labels, reports.get(i, [])) for i, p in enumerate(photos)]


def load_level(run: Run, labels_dir: Path = LOAD_LABELS) -> LoadScore:
    """The load-level figures on the photos of the ``vehicles`` set (the only ones with load labels)."""
    labels = read_load_labels(labels_dir)
    on_set = {name: labels.get(name.split("/", 1)[1], []) for name in _names(run, "vehicles")}
    reports = {name: run.trucks.get(name, []) for name in on_set}
    return score_loads(on_set, reports)


def _outcomes(run: Run, set_name: str) -> dict[str, int]:
    """How many of a photo set's confirmed trucks became cases or candidates, or were silenced."""
    counts = Counter(
        t.outcome for name, trucks in run.trucks.items() if name.startswith(f"{set_name}/") for t in trucks
    )
    return dict(sorted(counts.items()))


def _names(run: Run, set_name: str) -> list[str]:
    return [r.photo for r in run.results if _set_of(r) == set_name]


def street_truck_check(results: Sequence[PhotoResult]) -> dict[str, object]:
    """How many of the hand-checked street-level trucks got an ``unsealed_truck`` report (IoU >= 0.5)."""
    trucks = _street_trucks()
    by_name = {r.photo: r for r in results}
    checked = found = 0
    for name, boxes in trucks.items():
        result = by_name.get(name)
        if result is None:
            continue
        for box in boxes:
            checked += 1
            found += any(
                r.violation_type is ViolationType.unsealed_truck and iou(r.box, box) >= 0.5
                for r in result.reports
            )
    return {"trucks": checked, "reported": found}


def _set_of(result: PhotoResult) -> str:
    return result.photo.split("/", 1)[0]


def completed(
    results: Sequence[PhotoResult], boxes: Mapping[str, Sequence[CompletionBox]]
) -> list[PhotoResult]:
    """The same photos and reports against the source labels plus the team's completion of them
    (``boxes``: :func:`bench.label_completion.read_completions`)."""
    return [PhotoResult(r.photo, complete(r.labels, boxes.get(r.photo, [])), r.reports) for r in results]


def scored(results: Sequence[PhotoResult]) -> dict[str, object]:
    """Per type, per set, and where the wrong reports and the misses are, for one set of labels."""
    scores = score(results)
    return {
        "types": {vt.value: s.as_dict() for vt, s in scores.items()},
        "by_set": {
            name: {vt.value: s.as_dict() for vt, s in score(r for r in results if _set_of(r) == name).items()}
            for name in sorted({_set_of(r) for r in results})
        },
        "wrong_on": {vt.value: s.wrong_on for vt, s in scores.items()},
        "missed_on": {vt.value: s.missed_on for vt, s in scores.items()},
        "recall_by_size": {vt.value: s.by_size() for vt, s in scores.items() if s.labelled},
    }


def summary(
    config_path: Path, frames: int, run: Run, boxes: Mapping[str, Sequence[CompletionBox]] | None = None
) -> dict[str, object]:
    """The run scored against the source labels (``types``, ``by_set``, ...), and with the completion
    ``boxes`` also against the source labels plus that completion (``completed``: the same keys)."""
    results = run.results
    loads = load_level(run) if any(_set_of(r) == "vehicles" for r in results) else None
    return {
        "config": str(config_path),
        "frames_per_photo": frames,
        "photos": len(results),
        "seconds": round(run.seconds, 1),
        # unsealed_truck here is the detector level: every truck confirmed, before any load stage.
        # Per validation set (by_set): trucks in traffic views (vehicles) and at street level (garbage).
        **scored(results),
        # Trucks as the box keeps them: the detector level less the trucks its load stage called
        # "not a truck" (the stage's own answer to "is it a truck"; a closed truck still counts).
        "trucks_kept": _truck_score(run.kept),
        # The load level: what the box ships for trucks, against the team's load labels.
        "truck_load": {"load_stage": run.load_stage, **(loads.as_dict() if loads else {})},
        # What the box did with the trucks it confirmed, per photo set (street level: garbage).
        "truck_outcomes_by_set": {
            name: _outcomes(run, name) for name in sorted({_set_of(r) for r in results})
        },
        "street_trucks": street_truck_check(results),
        **(
            {
                "completed": {
                    **scored(completed(results, boxes)),
                    "trucks_kept": _truck_score(completed(run.kept, boxes)),
                }
            }
            if boxes is not None
            else {}
        ),
    }


def _truck_score(results: Sequence[PhotoResult]) -> dict[str, object]:
    return score(results)[TRUCK].as_dict()


def changes(before: dict[str, object], after: dict[str, object]) -> dict[str, dict[str, float | None]]:
    """Per type, and for the trucks the box keeps (``trucks_kept``): precision and recall after
    minus before (None where either is undefined)."""
    out: dict[str, dict[str, float | None]] = {}
    b_types, a_types = before["types"], after["types"]
    assert isinstance(b_types, dict) and isinstance(a_types, dict)
    pairs = [(vtype, a, b_types[vtype]) for vtype, a in a_types.items()]
    pairs.append(("trucks_kept", after["trucks_kept"], before["trucks_kept"]))
    for vtype, a, b in pairs:
        assert isinstance(a, dict) and isinstance(b, dict)
        out[vtype] = {
            key: None if a[key] is None or b[key] is None else round(a[key] - b[key], 3)
            for key in ("precision", "recall")
        }
        out[vtype]["reports"] = a["reports"] - b["reports"]
    return out


def print_table(result: dict[str, object], labels: str = "source") -> None:
    """The run's tables: against the source labels, the completed labels, or both (``labels``)."""
    print(f"{result['config']}: {result['photos']} photos x {result['frames_per_photo']} frames, "
          f"{result['seconds']} s")  # fmt: skip
    if labels in ("source", "both"):
        print("against the source labels:")
        print(table(_scores(result["types"])))
        print(kept_text(result["trucks_kept"]))
    if labels in ("completed", "both"):
        part = _completed_part(result)
        types = part["types"]
        assert isinstance(types, dict)
        print("against the source labels plus the team's completion (datasets/label_completion/PROTOCOL.md):")
        print(table(_scores(types)))
        ignored = {vt: c["ignored"] for vt, c in types.items() if c["ignored"]}
        print(f"reports on an ignore box only (neither right nor wrong): {ignored or 'none'}")
        print(kept_text(part["trucks_kept"]))
        print(size_text(part["recall_by_size"]))
    trucks = result["street_trucks"]
    assert isinstance(trucks, dict)
    print(
        f"street-level trucks (training/recipes/street_trucks.json): "
        f"{trucks['reported']} of {trucks['trucks']} reported"
    )
    loads = result["truck_load"]
    assert isinstance(loads, dict)
    if "open_loads" in loads:
        print(load_text(loads))
    print(f"confirmed trucks by what the box did, per photo set: {result['truck_outcomes_by_set']}")


def size_text(by_size: object) -> str:
    """Recall per size band of the labelled objects (square root of the box's area, photo pixels)."""
    assert isinstance(by_size, dict)
    lines = ["recall by labelled object size (square root of its area, photo pixels; found / labelled):"]
    for vtype, bands in by_size.items():
        parts = [f"{band} {c['found']}/{c['labelled']}" for band, c in bands.items()]
        lines.append(f"  {vtype}: " + ", ".join(parts))
    return "\n".join(lines)


def kept_text(kept: object) -> str:
    """The trucks the box keeps as trucks, in one line."""
    assert isinstance(kept, dict)
    return (
        f"trucks the box keeps (less those its load stage called not a truck): {kept['reports']} reports, "
        f"precision {fmt(kept['precision'])}, recall {fmt(kept['recall'])}"
    )


def load_text(loads: dict[str, object]) -> str:
    """The load-level figures in words, with how few open loads they rest on."""
    stage = "with the config's load stage" if loads["load_stage"] else "no load stage in this config"
    lines = [
        f"unsealed_truck at the load level ({stage}; team load labels, vehicle val photos): "
        f"{loads['cases']} cases, {loads['cases_on_open_load']} on an open load (precision "
        f"{fmt(loads['precision'])}); {loads['candidates']} candidates, {loads['candidates_on_open_load']} "
        f"on an open load; {loads['too_far_to_judge']} too far to judge; open loads reported as case or "
        f"candidate {fmt(loads['recall'])}, as a case "
        f"{fmt(loads['recall_cases_only'])}, silenced {loads['open_loads_silenced']}",
        f"  only {loads['open_loads']} open loads are labelled in these {loads['photos']} photos "
        f"({loads['open_loads_held_out_by_load_model']} of them held out by the load model, the rest in its "
        f"training split): one truck moves recall by 1/{loads['open_loads'] or 1}; read these as counts, "
        "not rates",
        "  what happened to each labelled truck (protocol class: outcome count):",
    ]
    by_label = loads["by_label"]
    assert isinstance(by_label, dict)
    for label, outcomes in by_label.items():
        lines.append(f"    {label}: " + ", ".join(f"{k} {v}" for k, v in outcomes.items()))
    lines.append(f"  reports on no labelled truck: {loads['unlabelled_reports']}")
    return "\n".join(lines)


def _scores(types: object) -> dict[ViolationType, TypeScore]:
    """``as_dict`` counts back into scores, for the table."""
    assert isinstance(types, dict)
    keys = ("reports", "right", "labelled", "found", "ignored")
    return {ViolationType(vt): TypeScore(**{k: c[k] for k in keys}) for vt, c in types.items()}


def fmt(value: object) -> str:
    """A figure to three places, or a dash where it is undefined."""
    return "–" if value is None else f"{value:.3f}"


def add_photo_arguments(parser: argparse.ArgumentParser) -> None:
    """Which photos a run uses and how long each is held (this bench's and ``bench.thresholds``')."""
    parser.add_argument("--frames", type=int, default=4, help="frames each photo is held (default 4)")
    parser.add_argument("--data", type=Path, default=SHARED, help="folder holding <set>/val (../shared/data)")
    parser.add_argument("--sets", default=",".join(SETS), help="validation sets to use, comma-separated")
    parser.add_argument("--limit", type=int, help="first N photos of each set only (quick checks)")


def photo_sets(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[str]:
    """The sets ``--sets`` names; ``--frames`` under 1 or an unknown set ends the run with a usage error."""
    if args.frames < 1:
        parser.error("--frames must be at least 1")
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        parser.error(f"unknown set(s) {', '.join(unknown)}; known: {', '.join(SETS)}")
    return sets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Per-type precision and recall of a box config on labelled photos."
    )
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="box config (default: the demo's)"
    )
    parser.add_argument("--baseline", type=Path, help="also run this config, for a before/after in one run")
    add_photo_arguments(parser)
    parser.add_argument(
        "--no-street-trucks", action="store_true", help="score against the source labels only"
    )
    parser.add_argument(
        "--labels",
        choices=("source", "completed", "both"),
        default="both",
        help="score against the sources' labels, against them plus the team's completion "
        "(datasets/label_completion), or both side by side (default)",
    )
    parser.add_argument(
        "--completion",
        type=Path,
        action="append",
        help="a completion file (repeatable; default: the team's signs and trucks, and piles)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    sets = photo_sets(parser, args)
    if not args.data.is_dir():
        print(f"no labelled photos at {args.data} (../shared/data beside the checkout): nothing to measure")
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
        baseline = load_config(args.baseline) if args.baseline else None
        photos = load_photos(args.data, sets, args.limit, street_trucks=not args.no_street_trucks)
    except (StreetWatchError, FileNotFoundError) as exc:
        print(f"case_precision: {exc}", file=sys.stderr)
        return 2
    completions = [] if args.labels == "source" else list(args.completion or COMPLETIONS)
    if args.labels == "both":  # side by side: a completion missing is left out, said so
        for path in [p for p in completions if not p.exists()]:
            print(f"case_precision: no completion at {path}; left out", file=sys.stderr)
            completions.remove(path)
        if not completions:
            args.labels = "source"
    try:  # read once, and a bad completion file refused before the long run
        boxes = read_completions(completions) if completions else None
    except CompletionError as exc:
        print(f"case_precision: {exc}", file=sys.stderr)
        return 2
    run = run_config(config, photos, args.frames)
    result = summary(args.config, args.frames, run, boxes)
    if baseline is not None:
        base_run = run_config(baseline, photos, args.frames)
        before = summary(args.baseline, args.frames, base_run, boxes)
        result["baseline"] = before
        result["change"] = changes(before, result)
        if boxes is not None:
            result["change_completed"] = changes(_completed_part(before), _completed_part(result))
        if not args.json:
            print_table(before, args.labels)
            print()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result, args.labels)
    return 0


def _completed_part(result: dict[str, object]) -> dict[str, object]:
    part = result["completed"]
    assert isinstance(part, dict)
    return part


if __name__ == "__main__":
    sys.exit(main())

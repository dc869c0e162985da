"""Dispatchers' decisions -> a YOLO training set (``streetwatch dataset from-reviews``).

The server's ``GET /api/v1/labels`` pages through reviewed cases, each with its best *clean*
frames (nothing drawn on them). Every frame becomes one labelled image:

=====================  ==========================  ===========================================
outcome                label given by reviewer     what the image is labelled with
=====================  ==========================  ===========================================
confirmed              none                        the box, as the detector's class (or the
                                                   class an ``object`` attribute names, e.g.
                                                   vending setup ``stall`` -> vending_stall)
confirmed              e.g. ``vending_stall``      the box, as that class
rejected (any reason)  e.g. ``bus``                the box, as that class
hard_negative          none                        nothing for the box: a *hard negative*
(not_a_violation)                                  (written as an image, always)
hard_negative with a   none                        the box, as for a confirmation: the object
value marked                                       is real, only no violation (a truck whose
``violation: false``                               load is covered is still a truck)
permitted              none                        the box, as the detector's class: the object
                                                   is real, only allowed; listed as permitted
duplicate, bad_image   none                        nothing: not exported, counted
rejected / wrong_class none                        nothing: a *negative*, listed
withdrawn              (reopened since)            nothing; listed so earlier exports drop it
=====================  ==========================  ===========================================

On the frame a reviewer annotated (``reviewed``, listed first), the reviewer's corrected box
replaces the detector's, the boxes of objects the detector missed are written with their
classes, and attributes whose value names a taxonomy class become boxes of that class (a truck's
load state boxes the cargo bed the reviewer drew; without that box it is recorded, not boxed).
A case with a reviewed frame exports only that frame: its other frames were never checked for
missed objects. Attributes and outcomes are recorded in ``review_export.json`` and, per image,
under ``reviews`` in the dataset's ``manifest.json`` (with the case's decision, reject reason,
reviewer, time and the object's box in the image's pixels: ``training.truck_load.field_labels``
cuts truck crops from them).

Plain negatives (rejected with no reason, or as wrong class without naming one) are listed in
``review_export.json`` and, only with ``negatives="background"``, also written as images without
boxes: a YOLO label file cannot say "this box is not a truck"; an empty one says "nothing of any
class is here". A ``not_a_violation`` rejection is written as such an image always: the console
asks the reviewer to look at the whole frame and draw what the detector missed.

Reviewed frames carry the reviewed object (and what the reviewer added); other objects in the
same frame may be unlabelled, so the manifest claims no class as labelled exhaustively
(``source_classes: {"reviews": []}``); merge them with other sources and pseudo-label, or
finish them in a labelling tool, before training on them alone.

Frames are downloaded once into a content-addressed cache (checked against their SHA-256 and
decoded before use), so a later export with ``since`` fetches only what is new.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from streetwatch.errors import DatasetError
from training.datasets.importers.yolo import MANIFEST_NAME
from training.datasets.records import LabeledBox, LabeledImage
from training.datasets.taxonomy import Taxonomy, load_taxonomy
from training.datasets.yolo_writer import write_yolo_dataset

log = logging.getLogger(__name__)

SOURCE = "reviews"
Negatives = Literal["list", "background"]


class ReviewClient:
    """GETs from a StreetWatch server with a bearer token (a viewer token is enough)."""

    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        if not token:
            raise DatasetError("no API token: pass --token or set STREETWATCH_TOKEN (viewer is enough)")
        if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
            raise DatasetError(f"--server {base_url!r} is not an http(s) URL (e.g. http://server:8000)")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def get(self, url: str) -> bytes:
        """The body of ``url`` (absolute, or a path on the server)."""
        target = url if "://" in url else self.base_url + url
        request = urllib.request.Request(target, headers={"Authorization": f"Bearer {self._token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                body: bytes = response.read()
                return body
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                refused = f"{target}: the server refused the token ({exc.code}); use a viewer token"
                raise DatasetError(refused) from None
            raise DatasetError(
                f"{target}: the server answered {exc.code} {exc.reason}{_detail(exc)}"
            ) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DatasetError(f"cannot reach the StreetWatch server at {self.base_url}: {reason}") from None

    def get_json(self, path: str, params: dict[str, Any]) -> Any:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        body = self.get(f"/api/v1{path}?{query}")
        try:
            return json.loads(body)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{self.base_url}/api/v1{path} did not answer JSON: {exc}") from None


def reviewed_cases(
    client: ReviewClient, since: datetime | None = None, frames: int = 3, page_size: int = 100
) -> Iterator[dict[str, Any]]:
    """Every reviewed case the server lists, page by page."""
    after = 0
    while True:
        params = {"after": after, "frames": frames, "limit": page_size}
        page = client.get_json("/labels", {**params, "since": since.isoformat() if since else None})
        yield from page["items"]
        if page.get("next_after") is None:
            return
        after = int(page["next_after"])


class FrameCache:
    """Clean frames by SHA-256 on disk: downloaded once, verified, decoded to learn their size."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, sha256: str) -> Path:
        return self.directory / f"{sha256}.jpg"

    def fetch(self, client: ReviewClient, sha256: str, url: str) -> tuple[Path, int, int]:
        """The frame's local path and (width, height); :class:`DatasetError` when it is unusable."""
        import cv2
        import numpy as np

        path = self.path_for(sha256)
        data = path.read_bytes() if path.is_file() else b""
        if hashlib.sha256(data).hexdigest() != sha256:  # not cached yet, or damaged on disk
            path.unlink(missing_ok=True)
            data = client.get(url)
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise DatasetError(f"frame {sha256[:12]}: the server's bytes hash to {digest[:12]}; not used")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise DatasetError(f"frame {sha256[:12]}: not a decodable image; not used")
        if not path.is_file():
            fd, temporary = tempfile.mkstemp(dir=self.directory, suffix=".part")
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
        height, width = image.shape[:2]
        return path, int(width), int(height)


def _detail(error: urllib.error.HTTPError) -> str:
    """The server's own explanation (FastAPI's ``detail``), when the body has one."""
    try:
        detail = json.loads(error.read() or b"{}").get("detail")
    except (ValueError, AttributeError, OSError):
        return ""
    if isinstance(detail, list):  # a validation error: [{"loc": [...], "msg": ...}, ...]
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return f": {detail}" if detail else ""


@dataclass
class ReviewExportReport:
    out_dir: Path
    cases: Counter[str] = field(default_factory=Counter)  # by decision
    boxes: Counter[str] = field(default_factory=Counter)  # by class written
    negatives: list[dict[str, Any]] = field(default_factory=list)
    #: Cases whose decision was taken back (reopened): drop their labels from earlier exports.
    withdrawn: list[int] = field(default_factory=list)
    #: case id -> when its decision was taken back (a later export's decision wins over it)
    withdrawn_at: dict[str, str | None] = field(default_factory=dict)
    #: detector class -> {"confirmed": n, "rejected": n}: how often reviewers agree with each class.
    verdicts: dict[str, Counter[str]] = field(default_factory=dict)
    #: by outcome (confirmed, hard_negative, permitted, duplicate, bad_image, ...)
    outcomes: Counter[str] = field(default_factory=Counter)
    #: permitted objects: real, allowed; written with their class, listed here
    permitted: list[dict[str, Any]] = field(default_factory=list)
    #: every reviewer attribute, with the class it was written as (or why not)
    attributes: list[dict[str, Any]] = field(default_factory=list)
    #: boxes that came from review data: corrected, added, attribute
    review_boxes: Counter[str] = field(default_factory=Counter)
    images: int = 0
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "cases": dict(self.cases),
            "images": self.images,
            "boxes": dict(self.boxes),
            "negatives": self.negatives,
            "withdrawn": self.withdrawn,
            "withdrawn_at": self.withdrawn_at,
            "verdicts": {name: dict(counts) for name, counts in sorted(self.verdicts.items())},
            "outcomes": dict(self.outcomes),
            "permitted": self.permitted,
            "attributes": self.attributes,
            "review_boxes": dict(self.review_boxes),
            "problems": self.problems,
        }

    def summary(self) -> str:
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(self.cases.items()))
        lines = [
            f"{sum(self.cases.values())} reviewed cases ({decisions})",
            f"{self.images} images written to {self.out_dir}",
            "boxes: " + (", ".join(f"{k} {v}" for k, v in sorted(self.boxes.items())) or "none"),
            f"negatives (rejected, no label): {len(self.negatives)}"
            f" ({sum(1 for n in self.negatives if n.get('hard'))} hard negatives written as images)",
        ]
        if self.review_boxes:
            lines.append(
                "from review data: " + ", ".join(f"{k} {v}" for k, v in sorted(self.review_boxes.items()))
            )
        if self.permitted:
            lines.append(f"permitted (labelled with their class, listed): {len(self.permitted)}")
        skipped = {k: v for k, v in self.outcomes.items() if k in _NOT_EXPORTED}
        if skipped:
            lines.append("not exported: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
        if self.attributes:
            written = sum(1 for a in self.attributes if a.get("written_as"))
            lines.append(f"attributes: {len(self.attributes)} recorded, {written} written as boxes")
        if self.withdrawn:
            lines.append(
                f"withdrawn (reopened, no decision stands): cases {', '.join(map(str, self.withdrawn))};"
                " drop their labels from earlier exports"
            )
        for name, counts in sorted(self.verdicts.items()):
            total = counts["confirmed"] + counts["rejected"]
            lines.append(f"  {name}: {counts['confirmed']}/{total} confirmed by reviewers")
        lines += [f"problem: {p}" for p in self.problems]
        return "\n".join(lines)


def export_reviews(
    client: ReviewClient,
    out_dir: Path,
    cache_dir: Path,
    *,
    taxonomy: Taxonomy | None = None,
    since: datetime | None = None,
    frames: int = 3,
    negatives: Negatives = "list",
    overwrite: bool = False,
) -> ReviewExportReport:
    """Fetch reviewed cases and write them as a YOLO set (all taxonomy classes, one ``train`` split)."""
    taxonomy = taxonomy or load_taxonomy()
    known = set(taxonomy.class_names())
    cache = FrameCache(cache_dir)
    report = ReviewExportReport(out_dir=out_dir)
    # One image per clean frame: two cases seen in the same frame (a truck and a bus) share it.
    frames_out: dict[Path, tuple[int, int, list[LabeledBox]]] = {}
    by_image: dict[str, list[dict[str, Any]]] = {}  # cached frame name -> what reviewers said of it
    for case in reviewed_cases(client, since=since, frames=frames):
        decision: str = case["decision"]
        label: str | None = case.get("label")
        outcome: str = case.get("outcome") or ("confirmed" if decision == "confirmed" else "rejected")
        report.cases[decision] += 1
        report.outcomes[outcome] += 1
        if decision == "withdrawn":  # reopened since: an earlier export's label for it is void
            report.withdrawn.append(case["case_id"])
            report.withdrawn_at[str(case["case_id"])] = case.get("reviewed_at")
            continue
        if outcome in _NOT_EXPORTED and label is None:
            continue  # a duplicate or an unreadable image says nothing about the object
        if not case["frames"]:
            report.problems.append(
                f"case {case['case_id']} ({decision}): the server holds no clean frame for it; not exported"
            )
            continue
        if label is not None and label not in known:
            report.problems.append(f"case {case['case_id']}: label {label!r} is not in the taxonomy; skipped")
            continue
        report.verdicts.setdefault(case["frames"][0]["detector_class"], Counter())[decision] += 1
        attributes = case.get("attributes") or []
        reviewed = [f for f in case["frames"] if f.get("reviewed")]
        for frame in reviewed or case["frames"]:  # a reviewed frame is the only one checked
            detector_class = frame["detector_class"]
            target = _object_class(decision, outcome, label, detector_class, attributes)
            if target is not None and target not in known:
                report.problems.append(
                    f"case {case['case_id']}: detector class {target!r} is not in the taxonomy; skipped"
                )
                continue
            try:
                path, width, height = cache.fetch(client, frame["clean_sha256"], frame["clean_url"])
            except DatasetError as exc:
                report.problems.append(f"case {case['case_id']}: {exc}")
                continue
            extra = (
                _review_boxes(case, frame, attributes, path.name, known, report)
                if frame.get("reviewed")
                else []
            )
            boxes: list[tuple[LabeledBox, str]] = []
            for class_name, raw, kind in extra:
                scaled = _scaled_box(frame, raw, width, height)
                if scaled is None:
                    report.problems.append(f"case {case['case_id']}: {kind} box {raw} has no area; skipped")
                    continue
                boxes.append((LabeledBox(class_name, *scaled), kind))
            record = {"case_id": case["case_id"], "outcome": outcome, "class": target, **_provenance(case)}
            # The reviewed object's box in this image's pixels: what a per-object label (truck load) cuts.
            record["box"] = _scaled_box(frame, frame.get("corrected_box") or frame["box"], width, height)
            if frame.get("reviewed"):
                record["attributes"] = {a["name"]: a["value"] for a in attributes}
            if target is None:
                hard = outcome == "hard_negative"
                negative = {"case_id": case["case_id"], "image": path.name, "box": frame["box"]}
                report.negatives.append({**negative, "not": detector_class, "hard": hard})
                if hard or negatives == "background" or boxes:
                    _add(frames_out, path, width, height, boxes, report)
                    by_image.setdefault(path.name, []).append(record)
                continue
            corrected = frame.get("corrected_box")
            box = _scaled_box(frame, corrected or frame["box"], width, height)
            if box is None:
                report.problems.append(f"case {case['case_id']}: box {frame['box']} has no area; skipped")
                continue
            if outcome == "permitted":
                report.permitted.append({"case_id": case["case_id"], "image": path.name, "class": target})
            reviewed_box = (LabeledBox(target, *box), "corrected" if corrected else "")
            _add(frames_out, path, width, height, [reviewed_box, *boxes], report)
            by_image.setdefault(path.name, []).append(record)
    images = [
        LabeledImage(path=path, width=w, height=h, boxes=tuple(boxes), source=SOURCE)
        for path, (w, h, boxes) in frames_out.items()
    ]
    report.images = len(images)
    if not images:
        raise DatasetError(f"no reviewed frame to export: {_nothing_hint(report, negatives)}")
    write_yolo_dataset(
        {"train": images},
        out_dir,
        taxonomy.class_names(),
        # One reviewed object per image: no class is labelled exhaustively (see the module doc).
        source_classes={SOURCE: []},
        overwrite=overwrite,
    )
    details = json.dumps(report.to_json(), indent=1) + "\n"
    (out_dir / "review_export.json").write_text(details, encoding="utf-8")
    _record_in_manifest(out_dir, by_image, report)
    return report


def _add(
    frames_out: dict[Path, tuple[int, int, list[LabeledBox]]],
    path: Path,
    width: int,
    height: int,
    boxes: list[tuple[LabeledBox, str]],
    report: ReviewExportReport,
) -> None:
    """Put ``boxes`` on the image of ``path`` and count them (by class, and by review kind)."""
    written = frames_out.setdefault(path, (width, height, []))[2]
    for box, kind in boxes:
        written.append(box)
        report.boxes[box.class_name] += 1
        if kind:
            report.review_boxes[kind] += 1


def _record_in_manifest(
    out_dir: Path, by_image: dict[str, list[dict[str, Any]]], report: ReviewExportReport
) -> None:
    """Add the review outcomes and attributes to the dataset's ``manifest.json`` (per image, and in
    total), so whoever trains from the set sees them without the export report."""
    manifest_file = out_dir / MANIFEST_NAME
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    for entry in manifest.get("images", {}).values():
        reviews = by_image.get(Path(entry.get("origin", "")).name)
        if reviews:
            entry["reviews"] = reviews
    manifest["reviews"] = {
        "report": "review_export.json",
        "outcomes": dict(report.outcomes),
        "attributes": report.attributes,
        "permitted": report.permitted,
    }
    manifest_file.write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")


def _nothing_hint(report: ReviewExportReport, negatives: Negatives) -> str:
    if report.negatives and negatives == "list":
        return (
            f"the {len(report.negatives)} reviewed frames are all rejections without a class; "
            "name the class when rejecting, or pass --negatives background"
        )
    if report.problems:
        return report.problems[0]
    if report.cases:
        return "the reviewed cases have no clean frames (boxes need evidence.keep_clean_frame)"
    return "review cases (confirm / reject) on the server first"


def _provenance(case: dict[str, Any]) -> dict[str, Any]:
    """Who decided what about the case, and when: lets a later import keep the latest decision."""
    keys = ("violation_type", "decision", "reject_reason", "label", "reason", "reviewer", "reviewed_at")
    return {key: case.get(key) for key in keys}


#: Outcomes that export nothing unless the reviewer named a class.
_NOT_EXPORTED = frozenset({"duplicate", "bad_image"})


def _object_class(
    decision: str, outcome: str, label: str | None, detector_class: str, attributes: list[dict[str, Any]]
) -> str | None:
    """The class the reviewed object is written as; None: it is a negative."""
    if label is not None:
        return label
    # A value classes.yaml marks as no violation (a truck's covered load) says the object is real and
    # only breaks no rule; written as background it would teach the detector "no truck here". Other
    # values say nothing of that kind (an umbrella with no goods is no stall): those stay negatives.
    if decision == "confirmed" or (
        outcome == "hard_negative" and any(a.get("violation") is False for a in attributes)
    ):
        named = [a["class_name"] for a in attributes if a.get("box_kind") == "object" and a.get("class_name")]
        return named[0] if named else detector_class
    if outcome == "permitted":
        return detector_class  # real and allowed: still what the detector said
    return None


def _review_boxes(
    case: dict[str, Any],
    frame: dict[str, Any],
    attributes: list[dict[str, Any]],
    image: str,
    known: set[str],
    report: ReviewExportReport,
) -> list[tuple[str, list[float], str]]:
    """(class, box in frame pixels, kind) of what the reviewer drew on the reviewed frame."""
    drawn: list[tuple[str, list[float], str]] = []
    for added in frame.get("added_boxes") or []:
        if added["class_name"] not in known:
            report.problems.append(
                f"case {case['case_id']}: added box class {added['class_name']!r} is not in the taxonomy;"
                " skipped"
            )
            continue
        drawn.append((added["class_name"], added["box"], "added"))
    for attribute in attributes:
        record = {
            "case_id": case["case_id"],
            "image": image,
            "name": attribute["name"],
            "value": attribute["value"],
            "class_name": attribute.get("class_name"),
            "written_as": None,
        }
        class_name = attribute.get("class_name")
        if class_name and attribute.get("box_kind") == "part":
            if attribute.get("box") is None:
                record["note"] = "no part box drawn: recorded, not boxed"
            elif class_name not in known:
                record["note"] = f"class {class_name!r} is not in the taxonomy"
            else:
                drawn.append((class_name, attribute["box"], "attribute"))
                record["written_as"] = class_name
        elif class_name and attribute.get("box_kind") == "object" and case["decision"] == "confirmed":
            record["written_as"] = class_name if not case.get("label") else None
        report.attributes.append(record)
    return drawn


def _scaled_box(
    frame: dict[str, Any], raw: list[float], width: int, height: int
) -> tuple[float, float, float, float] | None:
    """A box in pixels of the original frame, in pixels of the clean JPEG, clipped to it."""
    sx, sy = width / frame["frame_width"], height / frame["frame_height"]
    x1, y1, x2, y2 = (float(v) for v in raw)
    x1, x2 = max(0.0, x1 * sx), min(float(width), x2 * sx)
    y1, y2 = max(0.0, y1 * sy), min(float(height), y2 * sy)
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return x1, y1, x2, y2

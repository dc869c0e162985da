"""Field labels end to end: truck cases reviewed on a live server (load attribute, rejections) ->
``dataset from-reviews`` -> ``training.truck_load.field_labels`` -> crops and labels the load
trainer reads. Real photos of the shipped samples with their trucks' boxes from the team's
manifest (``datasets/truck_load/manifest.csv``)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from streetwatch.cli import main
from tests.server.api.conftest import Api
from tests.server.api.test_reviews_to_training_set import _seed_case, live_url
from training.truck_load import field_labels
from training.truck_load.field_labels import FIELD_GROUP_BASE, read_field_sources

__all__ = ["live_url"]  # the fixture, shared with the other end-to-end tests

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "datasets" / "samples" / "images"


def _sample_trucks(count: int) -> list[tuple[Path, tuple[float, float, float, float]]]:
    """Shipped sample photos with a labelled truck box each, as the normalised (cx, cy, w, h)."""
    found: list[tuple[Path, tuple[float, float, float, float]]] = []
    with (REPO / "datasets" / "truck_load" / "manifest.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            photo = SAMPLES / f"vehicles_{Path(row['image']).name}"
            width, height = int(row["x2"]) - int(row["x1"]), int(row["y2"]) - int(row["y1"])
            if photo.is_file() and min(width, height) >= 40 and photo not in {p for p, _ in found}:
                image = cv2.imread(str(photo))
                assert image is not None, photo
                h, w = image.shape[:2]
                cx, cy = (int(row["x1"]) + width / 2) / w, (int(row["y1"]) + height / 2) / h
                found.append((photo, (cx, cy, width / w, height / h)))
            if len(found) == count:
                return found
    raise AssertionError(f"fewer than {count} sample photos with a truck in the manifest")


def _act(api: Api, case_id: int, **body: Any) -> None:
    answer = api.post(f"/api/v1/cases/{case_id}/actions", json=body)
    assert answer.status_code == 200, answer.text


def _export(live_url: str, api: Api, out: Path, cache: Path) -> None:
    args = ["dataset", "from-reviews", "--server", live_url, "--token", api.tokens["viewer"]]
    assert main([*args, "--out", str(out), "--cache", str(cache)]) == 0


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_reviewed_truck_cases_become_load_labels(
    api: Api, live_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = _sample_trucks(6)
    # Seen from a passing van: each truck had moved on by its event's frame (evidence.box says where
    # it is in the clean frame); the crops must be cut there.
    opened, sealed, bus, suv, unanswered, damaged = (
        _seed_case(api, photo, box, 1000 * i, moved=True) for i, (photo, box) in enumerate(photos)
    )
    where = {
        case_id: (photo, box)
        for case_id, (photo, box) in zip((opened, sealed, bus, suv, unanswered, damaged), photos, strict=True)
    }
    # First judged sealed (a tarp), which is no violation...
    _act(api, opened, action="reject", reject_reason="not_a_violation",
         review={"attributes": {"load": {"value": "covered"}}})  # fmt: skip
    _act(api, sealed, action="reject", reject_reason="not_a_violation",
         review={"attributes": {"load": {"value": "covered"}}})  # fmt: skip
    _act(api, bus, action="reject", reject_reason="wrong_class", label="bus")
    _act(api, suv, action="reject", reject_reason="not_a_violation", reason="Not a truck, an SUV")
    _act(api, unanswered, action="confirm")  # a truck, but nobody said what its load is
    first, second, cache = tmp_path / "export-1", tmp_path / "export-2", tmp_path / "cache"
    _export(live_url, api, first, cache)

    # ...then looked at again: part of the load is open after all. And one more truck is reviewed.
    _act(api, opened, action="reopen")
    _act(api, opened, action="confirm", review={"attributes": {"load": {"value": "partly_covered"}}})
    _act(api, damaged, action="reject", reject_reason="not_a_violation",
         review={"attributes": {"load": {"value": "closed_body"}}})  # fmt: skip
    _export(live_url, api, second, cache)
    # The second export's frame of the last case is damaged on disk (half its bytes).
    manifest = json.loads((second / "manifest.json").read_text())
    (broken,) = [
        second / name
        for name, entry in manifest["images"].items()
        if any(r["case_id"] == damaged for r in entry.get("reviews", []))
    ]
    broken.write_bytes(broken.read_bytes()[: broken.stat().st_size // 2])
    capsys.readouterr()

    out = tmp_path / "field"
    code = field_labels.main([str(first), str(second), "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 1, printed  # a frame was refused: said, and the rest imported
    assert f"problem: case {damaged}: {broken}: its bytes do not match" in printed

    labels = {row["crop_id"]: row for row in _csv(out / "labels_final.csv")}
    manifest_rows = {row["crop_id"]: row for row in _csv(out / "manifest.csv")}
    assert set(labels) == set(manifest_rows)
    by_case = {int(row["case_id"]): labels[crop_id]["label"] for crop_id, row in manifest_rows.items()}
    # The latest decision of the reopened case wins; the unanswered and the damaged ones label nothing.
    assert by_case == {opened: "partly_covered", sealed: "covered", bus: "not_a_truck", suv: "not_a_truck"}
    assert labels[f"field_case{suv}_0"]["how"] == "field: rejected, reviewer wrote 'Not a truck, an SUV'"
    report = json.loads((out / "field_import.json").read_text())
    assert report["skipped"] == {"no load answer": 1} and report["superseded"] == 1
    for crop_id, row in manifest_rows.items():
        assert row["source"] == "field" and row["reviewer"] == "reviewer-1"
        assert int(row["group"]) == FIELD_GROUP_BASE + int(row["case_id"])
        piece = cv2.imread(str(out / "crops" / f"{crop_id}.jpg"))
        assert piece is not None
        # The crop is the reviewed truck with 10 % context a side, cut from the clean frame where
        # the truck is in it (not where it was by the event's own frame).
        assert piece.shape[1] == pytest.approx(1.2 * int(row["width"]), abs=3)
        assert piece.shape[0] == pytest.approx(1.2 * int(row["height"]), abs=3)
        photo, (cx, cy, w, h) = where[int(row["case_id"])]
        image = cv2.imread(str(photo))
        assert image is not None
        true_x1, true_y1 = (cx - w / 2) * image.shape[1], (cy - h / 2) * image.shape[0]
        assert (int(row["x1"]), int(row["y1"])) == (
            pytest.approx(true_x1, abs=2),
            pytest.approx(true_y1, abs=2),
        )

    # The load trainer reads them as another source, in its own classes, each with its image.
    crops, folders = read_field_sources([out])
    assert {c.crop_id: c.label for c in crops} == {
        f"field_case{opened}_0": "uncovered",
        f"field_case{sealed}_0": "covered",
        f"field_case{bus}_0": "not_a_truck",
        f"field_case{suv}_0": "not_a_truck",
    }
    assert all(c.source == "field" and c.mined and (folders[c.crop_id] / f"{c.crop_id}.jpg").is_file()
               for c in crops)  # fmt: skip

    # A second import into the same folder must be asked for.
    assert field_labels.main([str(first), "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err

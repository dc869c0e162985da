"""The first-model recipe: label lines (boxes and polygons) and the merged dataset layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from training.data_hash import dataset_hash, split_hash
from training.recipes.first_model import CLASSES, parse_label_line, prepare

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def test_box_line_passes_through() -> None:
    assert parse_label_line("2 0.5 0.4 0.2 0.1") == (2, 0.5, 0.4, 0.2, 0.1)


def test_polygon_line_becomes_its_bounding_box() -> None:
    cls, cx, cy, w, h = parse_label_line("0 0.1 0.2 0.5 0.2 0.5 0.6 0.1 0.6")  # type: ignore[misc]
    assert cls == 0
    assert (cx, cy, w, h) == pytest.approx((0.3, 0.4, 0.4, 0.4))


def test_blank_and_malformed_lines() -> None:
    assert parse_label_line("   ") is None
    with pytest.raises(ValueError, match="polygon"):
        parse_label_line("1 0.1 0.2 0.3")


@pytest.mark.skipif(not (SHARED / "garbage").is_dir(), reason=f"needs {SHARED}")
def test_prepare_merges_sources_with_our_class_ids_and_a_stable_hash(tmp_path: Path) -> None:
    report = prepare(SHARED, tmp_path / "a", yolox=None, limit=2)
    assert report.images["vehicles/train"] == 2 and report.images["signboards/val"] == 2
    data = yaml.safe_load((tmp_path / "a" / "data.yaml").read_text())
    assert list(data["names"].values()) == CLASSES
    # signboard (source id 0) becomes our id 3; vehicles (source 0..3) become 4..7
    signboard_labels = (tmp_path / "a" / "val" / "labels").glob("signboards__*.txt")
    assert {line.split()[0] for f in signboard_labels for line in f.read_text().split("\n") if line} == {"3"}
    vehicle_labels = (tmp_path / "a" / "train" / "labels").glob("vehicles__*.txt")
    assert {int(line.split()[0]) for f in vehicle_labels for line in f.read_text().split("\n") if line} <= {
        4,
        5,
        6,
        7,
    }
    # the signboard set is repeated in the train list to even out the classes
    assert sum("signboards__" in line for line in (tmp_path / "a" / "train.txt").read_text().split()) == 4

    prepare(SHARED, tmp_path / "b", yolox=None, limit=2)
    assert dataset_hash(tmp_path / "a" / "data.yaml") == dataset_hash(tmp_path / "b" / "data.yaml")
    label = next((tmp_path / "b" / "val" / "labels").glob("garbage__*.txt"))
    label.write_text(label.read_text() + "1 0.5 0.5 0.1 0.1\n")
    assert split_hash(tmp_path / "a" / "data.yaml", "val") != split_hash(tmp_path / "b" / "data.yaml", "val")

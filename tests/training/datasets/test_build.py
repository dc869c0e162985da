"""Writer and builder: the YOLO output reads back the same, ultralytics loads it, groups never straddle."""

from __future__ import annotations

import json

import pytest
import yaml

from streetwatch.errors import DatasetError
from training.datasets.build import SourceSpec, build_yolo_dataset
from training.datasets.importers import import_dataset
from training.datasets.importers.yolo import import_yolo
from training.datasets.yolo_writer import write_yolo_dataset

from .conftest import FIXTURES

GARBAGE = ("garbage", "garbage_bin", "overflow")


@pytest.fixture(scope="module")
def garbage(taxonomy):
    return import_dataset("yolo", FIXTURES / "yolo", source="garbage_cn", taxonomy=taxonomy)


def _key(image):
    return sorted(
        (b.class_name, round(b.x1, 1), round(b.y1, 1), round(b.x2, 1), round(b.y2, 1)) for b in image.boxes
    )


def test_written_dataset_reads_back_identically(tmp_path, garbage, taxonomy):
    names = taxonomy.trained_class_names()
    report = write_yolo_dataset({"train": garbage.images}, tmp_path / "out", names)
    data = yaml.safe_load(report.data_yaml.read_text())
    assert data["names"] == dict(enumerate(names))
    assert data["train"] == "images/train"
    again = import_yolo(tmp_path / "out", source="x", mapping=taxonomy.identity_mapping())
    assert again.report.problems == []
    before = {i.path.name: _key(i) for i in garbage.images}
    after = {i.path.name.removeprefix("garbage_cn__"): _key(i) for i in again.images}
    assert after == before
    assert {i.source for i in again.images} == {"garbage_cn"}  # restored from manifest.json
    assert report.linked == len(garbage.images)  # hard links on the same file system
    written = tmp_path / "out/images/train/garbage_cn__atanu_000019.jpg"
    assert written.stat().st_ino == (FIXTURES / "yolo/train/images/atanu_000019.jpg").stat().st_ino


def test_classes_outside_the_list_are_left_out_and_counted(tmp_path, garbage):
    report = write_yolo_dataset({"train": garbage.images}, tmp_path / "out", ["overflow"], link=False)
    expected = sum(1 for i in garbage.images for b in i.boxes if b.class_name != "overflow")
    assert sum(report.dropped_boxes.values()) == expected > 0
    assert report.copied == len(garbage.images)
    lines = [
        line for p in (tmp_path / "out/labels/train").glob("*.txt") for line in p.read_text().splitlines()
    ]
    assert lines and all(line.startswith("0 ") for line in lines)


def test_refuses_to_overwrite_a_foreign_folder(tmp_path, garbage):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        write_yolo_dataset({"train": garbage.images}, tmp_path / "mine", GARBAGE)
    with pytest.raises(DatasetError, match="not written by StreetWatch"):
        write_yolo_dataset({"train": garbage.images}, tmp_path / "mine", GARBAGE, overwrite=True)
    assert (tmp_path / "mine/notes.txt").read_text() == "keep me"
    write_yolo_dataset({"train": garbage.images}, tmp_path / "ours", GARBAGE)
    write_yolo_dataset({"val": garbage.images[:1]}, tmp_path / "ours", GARBAGE, overwrite=True)
    assert not (tmp_path / "ours/images/train").exists()


def test_build_merges_sources_and_keeps_duplicate_groups_on_one_side(tmp_path, taxonomy):
    sources = [
        SourceSpec("garbage_cn", "yolo", FIXTURES / "yolo"),
        SourceSpec("vehicles_cam", "coco", FIXTURES / "coco/annotations.json", mapping="coco"),
        SourceSpec("signboards_vn", "voc", FIXTURES / "voc"),
    ]
    report = build_yolo_dataset(sources, tmp_path / "merged", taxonomy, val_fraction=0.3, seed=1)
    assert report.class_names == taxonomy.trained_class_names()
    assert report.duplicate_groups == 2 and report.images_in_duplicate_groups == 4
    assert report.origin_split_leaks == 1  # atanu_002240 (train) and its copy atanu_002192 (val)
    manifest = json.loads((tmp_path / "merged/manifest.json").read_text())
    side = {}
    for key, entry in manifest["images"].items():
        side.setdefault(entry["group"], set()).add(key.split("/")[1])
    assert all(len(s) == 1 for s in side.values())
    assert manifest["source_classes"]["signboards_vn"] == ["signboard"]
    assert "truck" in manifest["source_classes"]["vehicles_cam"]
    # The VOC photo also has a 'billboard' box no mapping knows: written without it, the photo
    # would teach that billboard as background, so it is left out (and listed in the report).
    assert report.stats.images_per_source == {"garbage_cn": 7, "vehicles_cam": 1}
    assert [p.name for p in report.imports[2].images_with_unknown] == ["vdl_IMG_0003.jpg"]
    assert sum(report.images_per_split.values()) == 8
    assert json.loads((tmp_path / "merged/build_report.json").read_text())["duplicate_groups"] == 2
    dropped = build_yolo_dataset(sources, tmp_path / "dedup", taxonomy, remove_duplicates=True)
    assert dropped.duplicates_dropped == 2 and sum(dropped.images_per_split.values()) == 6


def test_ultralytics_reads_the_written_labels(tmp_path, garbage, taxonomy):
    ultralytics_data = pytest.importorskip("ultralytics.data.dataset")
    from ultralytics.data.utils import check_det_dataset

    names = taxonomy.trained_class_names()
    report = write_yolo_dataset({"train": garbage.images, "val": garbage.images[:2]}, tmp_path / "out", names)
    data = check_det_dataset(str(report.data_yaml))
    assert data["nc"] == len(names)
    dataset = ultralytics_data.YOLODataset(
        img_path=data["train"], data=data, task="detect", imgsz=64, augment=False, cache=False
    )
    loaded = sum(len(label["cls"]) for label in dataset.labels)
    assert loaded == sum(len(i.boxes) for i in garbage.images)

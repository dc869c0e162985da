"""Each importer on small real fixtures (downscaled real photos, their real labels in each format)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from streetwatch.errors import DatasetError
from training.datasets.images import ImageReadError, read_image_size
from training.datasets.importers import import_dataset
from training.datasets.records import ProblemKind

from .conftest import FIXTURES, yolo_rows

GARBAGE = ["garbage", "garbage_bin", "overflow"]
VEHICLES = ["car", "motor", "truck", "bus"]


def _boxes(image):
    return sorted(
        (b.class_name, round(b.x1, 1), round(b.y1, 1), round(b.x2, 1), round(b.y2, 1)) for b in image.boxes
    )


def _expected_from_labels(label_name: str, names: list[str], width: int, height: int):
    """Boxes of a real label file (copied from the full data set), scaled to the fixture's size."""
    label = FIXTURES / "labels" / label_name
    result = []
    for c, cx, cy, w, h in yolo_rows(label):
        result.append(
            (
                names[int(c)],
                round((cx - w / 2) * width, 1),
                round((cy - h / 2) * height, 1),
                round((cx + w / 2) * width, 1),
                round((cy + h / 2) * height, 1),
            )
        )
    return sorted(result)


def _close(actual, expected, tolerance=0.6):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        assert a[0] == e[0]
        assert all(abs(x - y) <= tolerance for x, y in zip(a[1:], e[1:], strict=True)), (a, e)


@pytest.fixture(scope="module")
def yolo(taxonomy):
    return import_dataset("yolo", FIXTURES / "yolo", source="garbage_cn", taxonomy=taxonomy)


def test_yolo_imports_the_good_images_with_their_splits(yolo):
    by_name = {i.path.name: i for i in yolo.images}
    assert sorted(by_name) == sorted(p.name for p in (FIXTURES / "yolo").rglob("atanu_*.jpg"))
    assert by_name["atanu_002192.jpg"].origin_split == "val"
    assert by_name["atanu_002694.jpg"].origin_split == "train"
    assert all(i.source == "garbage_cn" and (i.width, i.height) == (256, 256) for i in yolo.images)
    clean = by_name["atanu_002695.jpg"]
    rows = yolo_rows(FIXTURES / "yolo/train/labels/atanu_002695.txt")
    assert len(clean.boxes) == len(rows)
    cx, cy, w, h = rows[0][1:]
    first = min(clean.boxes, key=lambda b: abs(b.x1 - (cx - w / 2) * 256) + abs(b.y1 - (cy - h / 2) * 256))
    assert first.x1 == pytest.approx((cx - w / 2) * 256)
    assert first.y2 == pytest.approx((cy + h / 2) * 256)


def test_yolo_polygon_becomes_the_min_max_box(yolo):
    image = next(i for i in yolo.images if i.path.name == "atanu_000019.jpg")
    polygon = next(r for r in yolo_rows(FIXTURES / "yolo/train/labels/atanu_000019.txt") if len(r) > 5)
    xs, ys = polygon[1::2], polygon[2::2]
    overflow = [b for b in image.boxes if b.class_name == "overflow"]
    assert len(overflow) == 1
    assert (overflow[0].x1, overflow[0].y1) == pytest.approx((min(xs) * 256, min(ys) * 256))
    assert (overflow[0].x2, overflow[0].y2) == pytest.approx((max(xs) * 256, max(ys) * 256))
    assert yolo.report.polygons_converted == 1


def test_yolo_broken_inputs_are_reported_with_file_and_reason(yolo):
    report = yolo.report
    problems = {p.kind: p for p in report.problems}
    assert report.counts_by_kind() == {
        "box_clipped": 1,
        "box_dropped": 1,
        "class_id_out_of_range": 1,
        "malformed_label": 1,
        "missing_image": 1,
        "unreadable_image": 1,
    }
    assert problems[ProblemKind.missing_image].file.name == "ghost_0001.txt"
    assert problems[ProblemKind.unreadable_image].file.name == "truncated_0001.jpg"
    assert "truncated" in problems[ProblemKind.unreadable_image].reason
    assert "class id 7" in problems[ProblemKind.class_id_out_of_range].reason
    assert problems[ProblemKind.malformed_label].reason.startswith("line ")
    clipped = next(i for i in yolo.images if i.path.name == "atanu_000019.jpg")
    assert max(b.x2 for b in clipped.boxes) == 256.0  # the overhanging box, clipped to the edge


def test_truncated_jpeg_needs_a_full_decode_to_be_caught():
    broken = FIXTURES / "yolo/train/images/truncated_0001.jpg"
    # OpenCV pads the missing part with grey and returns an image: no error to catch.
    assert cv2.imread(str(broken)) is not None
    assert read_image_size(broken, full_decode=False).width == 256
    with pytest.raises(ImageReadError, match="truncated"):
        read_image_size(broken)


def test_yolo_blank_label_lines_are_skipped_without_a_problem(tmp_path, taxonomy):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.jpg"), np.zeros((100, 200, 3), np.uint8))
    (tmp_path / "labels" / "a.txt").write_text("\n   \n2 0.5 0.4 0.2 0.1\n\t\n")
    dataset = import_dataset("yolo", tmp_path, source="garbage_cn", names=GARBAGE, taxonomy=taxonomy)
    assert dataset.report.problems == []
    (box,) = dataset.images[0].boxes
    assert box.class_name == "overflow"
    assert (box.x1, box.y1, box.x2, box.y2) == pytest.approx((80, 35, 120, 45))


def test_yolo_without_names_asks_for_them(tmp_path, taxonomy):
    (tmp_path / "images").mkdir()
    with pytest.raises(DatasetError, match="--names"):
        import_dataset("yolo", tmp_path, source="x", taxonomy=taxonomy)


def test_coco_maps_coco_names_and_reports_problems(taxonomy):
    dataset = import_dataset(
        "coco", FIXTURES / "coco/annotations.json", source="coco_sample", mapping="coco", taxonomy=taxonomy
    )
    assert [i.path.name for i in dataset.images] == ["vnv_1111_jpg.jpg"]
    image = dataset.images[0]
    expected = _expected_from_labels("vnv_1111_jpg.txt", VEHICLES, image.width, image.height)
    _close(_boxes(image), expected)
    report = dataset.report
    assert report.counts_by_kind() == {"class_id_out_of_range": 1, "missing_image": 1, "size_mismatch": 1}
    assert dict(report.ignored_boxes) == {"toothbrush": 1, "car (crowd)": 1}
    mismatch = next(p for p in report.problems if p.kind is ProblemKind.size_mismatch)
    assert "640x480" in mismatch.reason


def test_voc_reads_boxes_and_reports_unknown_names_and_broken_files(taxonomy):
    dataset = import_dataset("voc", FIXTURES / "voc", source="signboards_vn", taxonomy=taxonomy)
    assert len(dataset.images) == 1
    image = dataset.images[0]
    expected = _expected_from_labels("vdl_IMG_0003.txt", ["signboard"], image.width, image.height)
    real = [b for b in _boxes(image) if b[3] < image.width - 1]  # leave out the clipped test box
    _close(real, expected, tolerance=1.0)  # VOC stores whole pixels
    assert len(image.boxes) == 2
    assert dataset.report.counts_by_kind() == {
        "box_clipped": 1,
        "missing_image": 1,
        "unknown_class": 1,
        "unreadable_annotations": 1,
    }
    unknown = next(p for p in dataset.report.problems if p.kind is ProblemKind.unknown_class)
    assert "'billboard'" in unknown.reason and unknown.file.name == "vdl_IMG_0003.xml"


def test_cvat_reads_boxes_and_polygons(taxonomy):
    dataset = import_dataset(
        "cvat", FIXTURES / "cvat/annotations.xml", source="garbage_cn", taxonomy=taxonomy
    )
    assert len(dataset.images) == 1
    image = dataset.images[0]
    expected = _expected_from_labels("atanu_000023.txt", GARBAGE, image.width, image.height)
    _close(_boxes(image), expected)
    assert dataset.report.polygons_converted == 1
    assert dataset.report.counts_by_kind() == {"missing_image": 1, "unknown_class": 1}
    assert dict(dataset.report.ignored_boxes) == {"garbage (points)": 1}


def test_labelstudio_reads_percent_rotated_and_polygon_boxes(taxonomy):
    dataset = import_dataset(
        "labelstudio", FIXTURES / "labelstudio/export.json", source="vehicles_vn", taxonomy=taxonomy
    )
    assert [i.path.name for i in dataset.images] == ["vnv_131_jpg.jpg"]  # found despite the upload prefix
    image = dataset.images[0]
    expected = _expected_from_labels("vnv_131_jpg.txt", VEHICLES, image.width, image.height)
    _close(_boxes(image), expected)
    assert dataset.report.polygons_converted == 1
    assert dataset.report.counts_by_kind() == {"missing_image": 1}


def test_unknown_format_is_a_clear_error(taxonomy):
    with pytest.raises(DatasetError, match="unknown dataset format 'kitti'"):
        import_dataset("kitti", FIXTURES, source="x", taxonomy=taxonomy)

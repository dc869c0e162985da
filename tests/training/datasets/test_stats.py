"""Stats numbers checked against an independent count of the label files."""

from __future__ import annotations

import math
from collections import Counter

from training.datasets.importers import import_dataset
from training.datasets.stats import compute_stats, format_stats, write_plots

from .conftest import yolo_rows

GARBAGE = ["garbage", "garbage_bin", "overflow"]


def test_counts_on_the_real_garbage_set_match_the_label_files(shared_data, taxonomy):
    root = shared_data / "garbage"
    dataset = import_dataset(
        "yolo", root, source="garbage_cn", taxonomy=taxonomy, names=GARBAGE, verify_images=False
    )
    splits: dict[str, list] = {}
    for image in dataset.images:
        splits.setdefault(image.origin_split, []).append(image)
    stats = compute_stats(splits)

    boxes, images_with, small = Counter(), Counter(), Counter()
    for label in root.glob("*/labels/*.txt"):
        rows = yolo_rows(label)
        for row in rows:
            name = GARBAGE[int(row[0])]
            boxes[name] += 1
            if math.sqrt(row[3] * 640 * row[4] * 640) < 32:  # all garbage photos are 640x640
                small[name] += 1
        images_with.update({GARBAGE[int(r[0])] for r in rows})
    assert dataset.report.problems == []
    assert stats.boxes_per_class == dict(boxes)
    assert stats.images_per_class == dict(images_with)
    assert {n: b["small"] for n, b in stats.coco_size_buckets.items()} == {n: small[n] for n in GARBAGE}
    assert stats.images_per_split == {
        "train": len(list(root.glob("train/images/*"))),
        "val": len(list(root.glob("val/images/*"))),
    }
    assert stats.images_per_source == {"garbage_cn": stats.images}
    assert sum(sum(h) for h in stats.pixel_size_histogram.values()) == stats.boxes
    assert sum(sum(h) for h in stats.relative_size_histogram.values()) == stats.boxes
    text = format_stats(stats)
    assert f"{boxes['overflow']}" in text.split("overflow")[1].split("\n")[0]


def test_plots_are_written(tmp_path, taxonomy):
    from .conftest import FIXTURES

    dataset = import_dataset("yolo", FIXTURES / "yolo", source="garbage_cn", taxonomy=taxonomy)
    stats = compute_stats({"train": dataset.images})
    paths = write_plots(stats, tmp_path / "plots")
    assert sorted(p.name for p in paths) == ["box_sizes.png", "class_counts.png", "images_per_source.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 5000

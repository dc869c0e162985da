"""Dataset statistics: per-class counts, box sizes, images per source and split; text, JSON and PNG plots.

Box size is the square root of the box area: in pixels of the original image (with the COCO small
/ medium / large buckets, < 32² and < 96² px), and relative to the image (sqrt of the area
fraction), which is what survives the resize to the model's input size.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from training.datasets.records import LabeledImage

#: Edges of the box size histogram (sqrt of area, pixels); the last bin is open.
PIXEL_SIZE_EDGES: tuple[float, ...] = (0, 8, 16, 32, 64, 96, 128, 256, 512)
#: Edges of the relative size histogram (sqrt of area fraction of the image).
RELATIVE_SIZE_EDGES: tuple[float, ...] = (0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.7)


def _bin(value: float, edges: Sequence[float]) -> int:
    index = 0
    for i, edge in enumerate(edges):
        if value >= edge:
            index = i
    return index


def _edge_labels(edges: Sequence[float]) -> list[str]:
    return [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)] + [f">={edges[-1]:g}"]


@dataclass
class DatasetStats:
    images: int = 0
    boxes: int = 0
    images_without_boxes: int = 0
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    images_per_class: dict[str, int] = field(default_factory=dict)
    images_per_source: dict[str, int] = field(default_factory=dict)
    images_per_split: dict[str, int] = field(default_factory=dict)
    boxes_per_split_class: dict[str, dict[str, int]] = field(default_factory=dict)
    coco_size_buckets: dict[str, dict[str, int]] = field(default_factory=dict)  # class -> small/medium/large
    pixel_size_bins: list[str] = field(default_factory=lambda: _edge_labels(PIXEL_SIZE_EDGES))
    pixel_size_histogram: dict[str, list[int]] = field(default_factory=dict)  # class -> counts per bin
    relative_size_bins: list[str] = field(default_factory=lambda: _edge_labels(RELATIVE_SIZE_EDGES))
    relative_size_histogram: dict[str, list[int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compute_stats(splits: Mapping[str, Sequence[LabeledImage]]) -> DatasetStats:
    """Count everything about the images of each split (e.g. ``{"train": [...], "val": [...]}``)."""
    stats = DatasetStats()
    boxes_per_class: Counter[str] = Counter()
    images_per_class: Counter[str] = Counter()
    per_source: Counter[str] = Counter()
    for split, images in splits.items():
        split_counts: Counter[str] = Counter()
        for image in images:
            stats.images += 1
            per_source[image.source] += 1
            stats.images_without_boxes += int(not image.boxes)
            images_per_class.update({b.class_name for b in image.boxes})
            image_area = image.width * image.height
            for box in image.boxes:
                split_counts[box.class_name] += 1
                side = math.sqrt(box.width * box.height)
                pixel_hist = stats.pixel_size_histogram.setdefault(
                    box.class_name, [0] * len(PIXEL_SIZE_EDGES)
                )
                pixel_hist[_bin(side, PIXEL_SIZE_EDGES)] += 1
                rel_hist = stats.relative_size_histogram.setdefault(
                    box.class_name, [0] * len(RELATIVE_SIZE_EDGES)
                )
                rel_hist[_bin(side / math.sqrt(image_area), RELATIVE_SIZE_EDGES)] += 1
                bucket = "small" if side < 32 else "medium" if side < 96 else "large"
                buckets = stats.coco_size_buckets.setdefault(
                    box.class_name, {"small": 0, "medium": 0, "large": 0}
                )
                buckets[bucket] += 1
        boxes_per_class.update(split_counts)
        stats.images_per_split[split] = len(images)
        stats.boxes_per_split_class[split] = dict(sorted(split_counts.items()))
    stats.boxes = sum(boxes_per_class.values())
    stats.boxes_per_class = dict(sorted(boxes_per_class.items()))
    stats.images_per_class = dict(sorted(images_per_class.items()))
    stats.images_per_source = dict(sorted(per_source.items()))
    stats.pixel_size_histogram = dict(sorted(stats.pixel_size_histogram.items()))
    stats.relative_size_histogram = dict(sorted(stats.relative_size_histogram.items()))
    stats.coco_size_buckets = dict(sorted(stats.coco_size_buckets.items()))
    return stats


def format_stats(stats: DatasetStats) -> str:
    """A plain-text table for the terminal."""
    splits = list(stats.boxes_per_split_class)
    lines = [
        f"{stats.images} images ({stats.images_without_boxes} without boxes), {stats.boxes} boxes",
        "images per split: " + ", ".join(f"{s} {n}" for s, n in stats.images_per_split.items()),
        "images per source: " + ", ".join(f"{s} {n}" for s, n in stats.images_per_source.items()),
        "",
        f"{'class':<22}{'images':>8}{'boxes':>8}"
        + "".join(f"{s:>8}" for s in splits)
        + f"{'small':>8}{'medium':>8}{'large':>8}",
    ]
    for name, count in stats.boxes_per_class.items():
        per_split = "".join(f"{stats.boxes_per_split_class[s].get(name, 0):>8}" for s in splits)
        buckets = stats.coco_size_buckets.get(name, {})
        lines.append(
            f"{name:<22}{stats.images_per_class.get(name, 0):>8}{count:>8}{per_split}"
            f"{buckets.get('small', 0):>8}{buckets.get('medium', 0):>8}{buckets.get('large', 0):>8}"
        )
    return "\n".join(lines)


def write_plots(stats: DatasetStats, out_dir: Path) -> list[Path]:
    """Save class counts, box sizes and images per source as PNG files; return their paths."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    figure, axis = plt.subplots(figsize=(8, 4))
    names = list(stats.boxes_per_class)
    bottom = [0] * len(names)
    for split, split_counts in stats.boxes_per_split_class.items():
        values = [split_counts.get(n, 0) for n in names]
        axis.bar(names, values, bottom=bottom, label=split)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axis.set_ylabel("boxes")
    axis.set_title("Boxes per class")
    axis.legend()
    axis.tick_params(axis="x", rotation=30)
    written.append(_save(figure, out_dir / "class_counts.png"))

    figure, axes = plt.subplots(1, 2, figsize=(12, 4))
    for axis, histograms, labels, title in (
        (axes[0], stats.pixel_size_histogram, stats.pixel_size_bins, "Box size, sqrt(area) in pixels"),
        (axes[1], stats.relative_size_histogram, stats.relative_size_bins, "Box size relative to the image"),
    ):
        width = 0.8 / max(len(histograms), 1)
        for k, (name, counts) in enumerate(histograms.items()):
            axis.bar([i + k * width for i in range(len(counts))], counts, width=width, label=name)
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=30)
        axis.set_title(title)
        axis.set_ylabel("boxes")
    axes[0].legend(fontsize="small")
    written.append(_save(figure, out_dir / "box_sizes.png"))

    figure, axis = plt.subplots(figsize=(6, 4))
    axis.barh(list(stats.images_per_source), list(stats.images_per_source.values()))
    axis.set_xlabel("images")
    axis.set_title("Images per source")
    written.append(_save(figure, out_dir / "images_per_source.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path

"""Build one YOLO training set from several sources: import, group near-duplicates, split, write, count.

    from training.datasets.build import SourceSpec, build_yolo_dataset
    garbage_names = ("garbage", "garbage_bin", "overflow")
    report = build_yolo_dataset(
        [
            SourceSpec("garbage_cn", "yolo", Path("data/garbage"), names=garbage_names),
            SourceSpec("vehicles_vn", "yolo", Path("data/vehicles"), names=("car", "motor", "truck", "bus")),
        ],
        Path("runs/data/merged"),
    )
    report.data_yaml  # give this to ultralytics

Each source labels only its own classes: ``manifest.json`` (and ``BuildReport.source_classes``)
records which classes each source's images are labelled for, so a trainer can avoid teaching
"background" where another source's class is simply unlabelled.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any

from streetwatch.errors import DatasetError
from training.datasets.dedup import DuplicateGroups, DuplicateSettings, find_duplicate_groups
from training.datasets.importers import DatasetFormat, import_dataset, resolve_mapping
from training.datasets.records import ImportedDataset, ImportReport, LabeledImage
from training.datasets.split import SplitResult, split_by_groups, split_by_origin, straddling_groups
from training.datasets.stats import DatasetStats, compute_stats
from training.datasets.taxonomy import Taxonomy, load_taxonomy
from training.datasets.yolo_writer import WriteReport, write_yolo_dataset

log = logging.getLogger(__name__)


class SplitPolicy(str, Enum):
    groups = "groups"  # a fresh seeded split of near-duplicate groups
    origin = "origin"  # keep the sources' split, moving straddling groups wholly to val


@dataclass(frozen=True)
class SourceSpec:
    """One dataset to read: its name (recorded per image), format, path and class mapping.

    ``mapping`` is a key of classes.yaml's source_mappings, an explicit dict, or None (the mapping
    named like the source if there is one, else our own class names). ``names`` gives YOLO class
    names by id when the dataset has no data.yaml; ``images_dir`` is where non-YOLO images are.
    """

    name: str
    format: DatasetFormat | str
    path: Path
    mapping: str | Mapping[str, str | None] | None = None
    names: Sequence[str] | None = None
    images_dir: Path | None = None


@dataclass
class BuildReport:
    out_dir: Path
    data_yaml: Path
    class_names: tuple[str, ...]
    imports: list[ImportReport]
    duplicate_groups: int  # groups of two or more near-identical images
    images_in_duplicate_groups: int
    duplicates_dropped: int
    origin_split_leaks: int  # groups the sources had put in both train and val
    images_per_split: dict[str, int]
    stats: DatasetStats
    write: WriteReport
    source_classes: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [report.summary() for report in self.imports]
        lines.append(
            f"near-duplicates: {self.duplicate_groups} groups holding {self.images_in_duplicate_groups}"
            f" images ({self.duplicates_dropped} dropped); groups straddling the sources' own train/val"
            f" split: {self.origin_split_leaks}"
        )
        lines.append(
            "written: "
            + ", ".join(f"{s} {n}" for s, n in self.images_per_split.items())
            + f" -> {self.data_yaml}"
        )
        if self.write.dropped_boxes:
            dropped = ", ".join(f"{c} {n}" for c, n in sorted(self.write.dropped_boxes.items()))
            lines.append(f"boxes of classes outside {list(self.class_names)} left out: {dropped}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "data_yaml": str(self.data_yaml),
            "class_names": list(self.class_names),
            "imports": [r.to_json() for r in self.imports],
            "duplicate_groups": self.duplicate_groups,
            "images_in_duplicate_groups": self.images_in_duplicate_groups,
            "duplicates_dropped": self.duplicates_dropped,
            "origin_split_leaks": self.origin_split_leaks,
            "images_per_split": self.images_per_split,
            "dropped_boxes": dict(self.write.dropped_boxes),
            "source_classes": self.source_classes,
            "stats": self.stats.to_json(),
        }


def import_sources(
    sources: Sequence[SourceSpec], taxonomy: Taxonomy, *, verify_images: bool = True
) -> list[ImportedDataset]:
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise DatasetError(f"source names must be unique, got {names}")
    return [
        import_dataset(
            spec.format,
            spec.path,
            source=spec.name,
            taxonomy=taxonomy,
            mapping=spec.mapping,
            names=spec.names,
            images_dir=spec.images_dir,
            verify_images=verify_images,
        )
        for spec in sources
    ]


def drop_duplicates(
    images: Sequence[LabeledImage], groups: DuplicateGroups
) -> tuple[list[LabeledImage], list[int]]:
    """Keep one image per group (the one with most boxes; ties by path) and the kept images' group ids."""
    best: dict[int, int] = {}
    for index, group in enumerate(groups.group_of):
        current = best.get(group)
        key = (-len(images[index].boxes), str(images[index].path))
        if current is None or key < (-len(images[current].boxes), str(images[current].path)):
            best[group] = index
    kept = sorted(best.values())
    return [images[i] for i in kept], [groups.group_of[i] for i in kept]


def split_images(
    images: Sequence[LabeledImage],
    group_of: Sequence[int],
    policy: SplitPolicy,
    val_fraction: float,
    seed: int,
) -> SplitResult:
    if policy is SplitPolicy.origin:
        return split_by_origin(images, group_of)
    return split_by_groups(images, group_of, val_fraction=val_fraction, seed=seed)


def build_from_images(
    images: Sequence[LabeledImage],
    out_dir: Path,
    class_names: Sequence[str],
    *,
    imports: Sequence[ImportReport] = (),
    source_classes: Mapping[str, Sequence[str]] | None = None,
    split_policy: SplitPolicy = SplitPolicy.groups,
    val_fraction: float = 0.2,
    seed: int = 0,
    duplicate_settings: DuplicateSettings | None = None,
    remove_duplicates: bool = False,
    link: bool = True,
    overwrite: bool = False,
) -> BuildReport:
    """Group, split, write and count images that are already in our taxonomy."""
    images = list(images)
    log.info("searching near-duplicates among %d images", len(images))
    groups = find_duplicate_groups([image.path for image in images], duplicate_settings)
    leaks = len(straddling_groups(images, groups.group_of))
    kept, group_of = (images, list(groups.group_of))
    if remove_duplicates:
        kept, group_of = drop_duplicates(images, groups)
    split = split_images(kept, group_of, split_policy, val_fraction, seed)
    group_by_path = {image.path: group_of[i] for i, image in enumerate(kept)}
    sources = {k: list(v) for k, v in (source_classes or {}).items()}
    write = write_yolo_dataset(
        split.as_splits(),
        out_dir,
        class_names,
        groups=group_by_path,
        source_classes=sources,
        link=link,
        overwrite=overwrite,
    )
    stats = compute_stats(
        {
            s: [_only(image, class_names) for image in split_images_]
            for s, split_images_ in split.as_splits().items()
        }
    )
    report = BuildReport(
        out_dir=write.out_dir,
        data_yaml=write.data_yaml,
        class_names=tuple(class_names),
        imports=list(imports),
        duplicate_groups=len(groups.duplicate_groups()),
        images_in_duplicate_groups=groups.images_in_duplicate_groups,
        duplicates_dropped=len(images) - len(kept),
        origin_split_leaks=leaks,
        images_per_split=dict(write.images_per_split),
        stats=stats,
        write=write,
        source_classes=sources,
    )
    (write.out_dir / "build_report.json").write_text(
        json.dumps(report.to_json(), indent=1, ensure_ascii=False), encoding="utf-8"
    )
    return report


def _only(image: LabeledImage, class_names: Sequence[str]) -> LabeledImage:
    """The image as written: without boxes of classes outside the model's list."""
    return replace(image, boxes=tuple(b for b in image.boxes if b.class_name in class_names))


def source_classes_of(sources: Sequence[SourceSpec], taxonomy: Taxonomy) -> dict[str, list[str]]:
    """The classes of ours each source labels (targets of its class mapping)."""
    result = {}
    for spec in sources:
        mapping = resolve_mapping(taxonomy, spec.name, spec.mapping)
        result[spec.name] = [c for c in taxonomy.class_names() if c in set(mapping.values())]
    return result


def build_yolo_dataset(
    sources: Sequence[SourceSpec],
    out_dir: Path,
    taxonomy: Taxonomy | None = None,
    *,
    class_names: Sequence[str] | None = None,
    split_policy: SplitPolicy = SplitPolicy.groups,
    val_fraction: float = 0.2,
    seed: int = 0,
    duplicate_settings: DuplicateSettings | None = None,
    remove_duplicates: bool = False,
    verify_images: bool = True,
    link: bool = True,
    overwrite: bool = False,
) -> BuildReport:
    """Import ``sources``, merge them and write one YOLO dataset to ``out_dir``.

    ``class_names`` defaults to the taxonomy's trained classes (class ids of the StreetWatch
    detector). Near-duplicates are grouped so no group straddles train and val; with
    ``remove_duplicates`` only one image per group is kept.
    """
    taxonomy = taxonomy or load_taxonomy()
    names = tuple(class_names) if class_names is not None else taxonomy.trained_class_names()
    unknown = sorted(set(names) - set(taxonomy.class_names()))
    if unknown:
        raise DatasetError(f"classes {unknown} are not in the taxonomy")
    datasets = import_sources(sources, taxonomy, verify_images=verify_images)
    # An image that lost boxes to an unmapped class would teach those objects as background.
    images = [image for dataset in datasets for image in dataset.trainable_images()]
    return build_from_images(
        images,
        out_dir,
        names,
        imports=[d.report for d in datasets],
        source_classes=source_classes_of(sources, taxonomy),
        split_policy=split_policy,
        val_fraction=val_fraction,
        seed=seed,
        duplicate_settings=duplicate_settings,
        remove_duplicates=remove_duplicates,
        link=link,
        overwrite=overwrite,
    )

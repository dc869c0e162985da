"""Importers from labelling formats to our taxonomy; :func:`import_dataset` is the one front door.

Formats: ``yolo`` (folder; boxes and polygons), ``coco`` (JSON file), ``voc`` (folder of XML),
``cvat`` (CVAT for images 1.1 XML file), ``labelstudio`` (Label Studio JSON export).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path

from streetwatch.errors import DatasetError
from training.datasets.importers.coco import import_coco
from training.datasets.importers.cvat import import_cvat
from training.datasets.importers.labelstudio import import_labelstudio
from training.datasets.importers.voc import import_voc
from training.datasets.importers.yolo import import_yolo
from training.datasets.records import ImportedDataset
from training.datasets.taxonomy import Taxonomy

__all__ = ["DatasetFormat", "import_dataset", "resolve_mapping"]


class DatasetFormat(str, Enum):
    yolo = "yolo"
    coco = "coco"
    voc = "voc"
    cvat = "cvat"
    labelstudio = "labelstudio"


def resolve_mapping(
    taxonomy: Taxonomy, source: str, mapping: str | Mapping[str, str | None] | None
) -> dict[str, str | None]:
    """The class mapping to use: a named one from classes.yaml, an explicit dict, or by default the
    mapping named like the source, else identity (the source already uses our class names)."""
    if isinstance(mapping, str):
        return taxonomy.mapping(mapping)
    if mapping is not None:
        known = set(taxonomy.class_names())
        unknown = sorted({t for t in mapping.values() if t is not None and t not in known})
        if unknown:
            raise DatasetError(f"class mapping targets {unknown} are not classes of the taxonomy")
        return dict(mapping)
    if source in taxonomy.source_mappings:
        return taxonomy.mapping(source)
    return taxonomy.identity_mapping()


def import_dataset(
    dataset_format: DatasetFormat | str,
    path: Path,
    *,
    source: str,
    taxonomy: Taxonomy,
    mapping: str | Mapping[str, str | None] | None = None,
    names: Sequence[str] | None = None,
    images_dir: Path | None = None,
    verify_images: bool = True,
) -> ImportedDataset:
    """Read one dataset into our taxonomy. ``names`` (YOLO only) gives class names by id when the
    dataset has no data.yaml; ``images_dir`` (other formats) is where the annotated images are."""
    try:
        fmt = DatasetFormat(dataset_format)
    except ValueError:
        known = ", ".join(f.value for f in DatasetFormat)
        raise DatasetError(f"unknown dataset format {dataset_format!r}; use one of {known}") from None
    resolved = resolve_mapping(taxonomy, source, mapping)
    path = Path(path)
    if fmt is DatasetFormat.yolo:
        if images_dir is not None:
            raise DatasetError("YOLO datasets find their images themselves; leave out --images")
        return import_yolo(path, source=source, mapping=resolved, names=names, verify_images=verify_images)
    if names is not None:
        raise DatasetError(f"{fmt.value} annotations carry their class names; 'names' is for YOLO only")
    readers = {
        DatasetFormat.coco: import_coco,
        DatasetFormat.voc: import_voc,
        DatasetFormat.cvat: import_cvat,
        DatasetFormat.labelstudio: import_labelstudio,
    }
    return readers[fmt](
        path, source=source, mapping=resolved, images_dir=images_dir, verify_images=verify_images
    )

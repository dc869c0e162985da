"""Import Pascal VOC XML: one file per image with ``<size>`` and ``<object><name><bndbox>``.

VOC corners are 1-based inclusive pixels, so ``xmin`` 1 is the first column: we subtract one
from the minimum corners. Images are looked up as ``images_dir / <filename>``; by default
``images_dir`` is a ``JPEGImages`` folder beside the annotations folder, else the XML's folder.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from streetwatch.errors import DatasetError
from training.datasets.importers._collect import Collector, RawBox
from training.datasets.records import ImportedDataset, ProblemKind


def _default_images_dir(annotations_dir: Path) -> Path:
    beside = annotations_dir.parent / "JPEGImages"
    return beside if beside.is_dir() else annotations_dir


def import_voc(
    annotations_dir: Path,
    *,
    source: str,
    mapping: Mapping[str, str | None],
    images_dir: Path | None = None,
    verify_images: bool = True,
) -> ImportedDataset:
    annotations_dir = Path(annotations_dir)
    if annotations_dir.is_dir() and (annotations_dir / "Annotations").is_dir():
        annotations_dir = annotations_dir / "Annotations"
    if annotations_dir.is_file():
        raise DatasetError(f"{annotations_dir} is a file; VOC is a folder of XML files (or of Annotations/)")
    if not annotations_dir.is_dir():
        raise DatasetError(f"VOC annotations folder {annotations_dir} does not exist")
    base = Path(images_dir) if images_dir is not None else _default_images_dir(annotations_dir)
    collector = Collector(source, mapping, verify_images=verify_images)
    for xml_file in sorted(annotations_dir.glob("*.xml")):
        _import_file(xml_file, base, collector)
    return collector.result()


def _import_file(xml_file: Path, base: Path, collector: Collector) -> None:
    try:
        root = ET.parse(xml_file).getroot()
    except (ET.ParseError, OSError) as exc:
        collector.report.add(ProblemKind.unreadable_annotations, xml_file, f"cannot parse XML: {exc}")
        return
    file_name = root.findtext("filename")
    if not file_name:
        collector.report.add(ProblemKind.malformed_label, xml_file, "no <filename>")
        return
    image_path = base / file_name.strip()
    size = collector.open_image(image_path, referenced_by=xml_file)
    if size is None:
        return
    declared = (root.findtext("size/width"), root.findtext("size/height"))
    if None not in declared and (int(float(declared[0] or 0)), int(float(declared[1] or 0))) not in {
        (size.width, size.height),
        (0, 0),  # some tools write 0 when they did not know the size
    }:
        collector.report.add(
            ProblemKind.size_mismatch,
            xml_file,
            f"{image_path.name} is {size.width}x{size.height} but annotated as {declared[0]}x{declared[1]};"
            " image skipped",
        )
        return
    raw_boxes = []
    for index, element in enumerate(root.iter("object"), start=1):
        name = (element.findtext("name") or "").strip()
        try:
            corners = [
                float(element.findtext(f"bndbox/{tag}") or "") for tag in ("xmin", "ymin", "xmax", "ymax")
            ]
        except ValueError:
            collector.report.add(
                ProblemKind.malformed_label, xml_file, f"object {index} ({name!r}) has no valid bndbox"
            )
            continue
        if not name:
            collector.report.add(ProblemKind.malformed_label, xml_file, f"object {index} has no <name>")
            continue
        xmin, ymin, xmax, ymax = corners
        raw_boxes.append(RawBox(name, xmin - 1, ymin - 1, xmax, ymax))
    collector.add_image(image_path, size, raw_boxes, xml_file)

"""Import a CVAT "for images 1.1" XML export: ``<image name width height>`` with ``<box>`` and ``<polygon>``.

Boxes give ``xtl ytl xbr ybr`` in pixels; polygons give ``points="x,y;x,y;..."`` and become the
min/max box of their points. Images are looked up as ``images_dir / name``; by default
``images_dir`` is an ``images`` folder beside the XML if it exists, else the XML's folder.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from streetwatch.errors import DatasetError
from training.datasets.importers._collect import Collector, RawBox, default_images_dir, polygon_to_box
from training.datasets.records import ImportedDataset, ProblemKind


def import_cvat(
    xml_file: Path,
    *,
    source: str,
    mapping: Mapping[str, str | None],
    images_dir: Path | None = None,
    verify_images: bool = True,
) -> ImportedDataset:
    xml_file = Path(xml_file)
    try:
        root = ET.parse(xml_file).getroot()
    except FileNotFoundError:
        raise DatasetError(f"CVAT annotation file {xml_file} does not exist") from None
    except (ET.ParseError, OSError) as exc:
        raise DatasetError(f"cannot parse CVAT XML {xml_file}: {exc}") from exc
    if root.tag != "annotations":
        raise DatasetError(
            f"{xml_file} is not a CVAT for images export (root <{root.tag}>, expected <annotations>)"
        )
    if images_dir is None:
        images_dir = default_images_dir(xml_file)
    collector = Collector(source, mapping, verify_images=verify_images)
    for element in root.iter("image"):
        name = element.get("name")
        if not name:
            collector.report.add(
                ProblemKind.malformed_label, xml_file, f"<image id={element.get('id')}> has no name"
            )
            continue
        image_path = Path(images_dir) / name
        size = collector.open_image(image_path, referenced_by=xml_file)
        if size is None:
            continue
        declared = (element.get("width"), element.get("height"))
        if None not in declared and (int(declared[0] or 0), int(declared[1] or 0)) != (
            size.width,
            size.height,
        ):
            collector.report.add(
                ProblemKind.size_mismatch,
                xml_file,
                f"{name} is {size.width}x{size.height} but annotated as {declared[0]}x{declared[1]};"
                " image skipped",
            )
            continue
        raw_boxes = [
            box for shape in element if (box := _shape_box(shape, name, xml_file, collector)) is not None
        ]
        collector.add_image(image_path, size, raw_boxes, xml_file)
    return collector.result()


def _shape_box(shape: ET.Element, image_name: str, xml_file: Path, collector: Collector) -> RawBox | None:
    label = shape.get("label", "")
    try:
        if shape.tag == "box":
            x1, y1, x2, y2 = (float(shape.get(k, "")) for k in ("xtl", "ytl", "xbr", "ybr"))
            return RawBox(label, x1, y1, x2, y2)
        if shape.tag in ("polygon", "polyline"):
            points = [tuple(float(v) for v in pair.split(",")) for pair in shape.get("points", "").split(";")]
            if len(points) < 3 or any(len(p) != 2 for p in points):
                raise ValueError("fewer than 3 x,y points")
            return polygon_to_box(label, (p[0] for p in points), (p[1] for p in points))
    except ValueError as exc:
        collector.report.add(
            ProblemKind.malformed_label, xml_file, f"<{shape.tag}> {label!r} on {image_name}: {exc}"
        )
        return None
    if shape.tag in ("points", "ellipse", "mask", "cuboid", "skeleton", "tag"):
        collector.report.ignored_boxes[f"{label} ({shape.tag})"] += 1
    return None

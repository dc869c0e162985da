"""``streetwatch dataset import|merge|split|stats|fetch|list|from-reviews``.

Handlers import OpenCV, Pillow and matplotlib lazily, so ``streetwatch --help`` stays fast.
Exit codes: 0 done (problems in the data are reported, not fatal), 1 error, 3 (fetch) nothing
downloaded because the dataset needs a manual download; the instructions are printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

EXIT_MANUAL_DOWNLOAD = 3


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dataset",
        help="Import, merge, split, count and fetch labelled datasets.",
        description="Dataset tools. Classes and source mappings: datasets/classes.yaml; "
        "public datasets: datasets/catalog.yaml.",
    )
    commands = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    _register_import(commands)
    _register_merge(commands)
    _register_split(commands)
    _register_stats(commands)
    _register_fetch(commands)
    _register_list(commands)
    _register_from_reviews(commands)


def _common(p: argparse.ArgumentParser, classes_default: str) -> None:
    p.add_argument("--taxonomy", type=Path, help="classes.yaml to use (default: the repository's)")
    p.add_argument(
        "--classes",
        default=classes_default,
        help="classes written to data.yaml, in taxonomy order: 'trained' (the detector's classes), "
        "'all', 'input' (split only: the input's own list) or a comma-separated list "
        f"(default: {classes_default})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an output folder written earlier")
    p.add_argument("--copy", action="store_true", help="copy images instead of hard-linking them")


def _register_import(commands: Any) -> None:
    p = commands.add_parser(
        "import",
        help="Read a dataset in any supported format and write it as YOLO in our classes.",
        description="Formats: yolo (folder), coco (JSON file), voc (folder of XML), cvat (CVAT for "
        "images 1.1 XML), labelstudio (JSON export). Broken files are listed, never fatal.",
    )
    p.add_argument("format", choices=["yolo", "coco", "voc", "cvat", "labelstudio"])
    p.add_argument("path", type=Path, help="dataset folder or annotation file")
    p.add_argument("--out", type=Path, required=True, help="output folder (YOLO layout)")
    p.add_argument("--source", help="source name recorded per image (default: the path's name)")
    p.add_argument("--mapping", help="source mapping in classes.yaml (default: the one named like --source)")
    p.add_argument(
        "--names",
        help="YOLO only: comma-separated class names by id, if there is no data.yaml "
        "(default: the names of the catalog dataset named like --source)",
    )
    p.add_argument(
        "--ignore",
        help="comma-separated source classes that are not ours: their boxes are dropped on purpose "
        "and their images kept (an image with a class the mapping does not know is left out)",
    )
    p.add_argument("--images", type=Path, help="folder of the images (coco, voc, cvat, labelstudio)")
    p.add_argument("--no-verify", action="store_true", help="skip decoding every image (faster, less safe)")
    _common(p, classes_default="all")
    p.set_defaults(handler=_import)


def _register_merge(commands: Any) -> None:
    p = commands.add_parser(
        "merge",
        help="Merge imported datasets, group near-duplicates, split so no group straddles train/val.",
    )
    p.add_argument("inputs", type=Path, nargs="+", help="YOLO folders in our classes (from 'dataset import')")
    p.add_argument("--out", type=Path, required=True)
    _split_options(p)
    p.add_argument(
        "--split",
        choices=["groups", "origin"],
        default="groups",
        help="groups: a fresh seeded split; origin: keep the inputs' split, moving groups that straddle it "
        "to val (default: groups)",
    )
    p.add_argument("--drop-duplicates", action="store_true", help="keep one image per near-duplicate group")
    _common(p, classes_default="trained")
    p.set_defaults(handler=_merge)


def _register_split(commands: Any) -> None:
    p = commands.add_parser("split", help="Re-split one YOLO dataset by near-duplicate groups.")
    p.add_argument("input", type=Path, help="YOLO folder in our classes")
    p.add_argument("--out", type=Path, required=True)
    _split_options(p)
    _common(p, classes_default="input")
    p.set_defaults(handler=_split)


def _split_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of images in val (default 0.2)")
    p.add_argument("--seed", type=int, default=0, help="split seed; same seed, same split (default 0)")


def _register_stats(commands: Any) -> None:
    p = commands.add_parser("stats", help="Count classes, box sizes and images per source; JSON and plots.")
    p.add_argument("input", type=Path, help="YOLO folder (any class names)")
    p.add_argument("--names", help="comma-separated class names by id, if there is no data.yaml")
    p.add_argument("--json", type=Path, help="write the numbers to this JSON file")
    p.add_argument("--plots", type=Path, help="write PNG plots into this folder")
    p.set_defaults(handler=_stats)


def _register_fetch(commands: Any) -> None:
    p = commands.add_parser(
        "fetch",
        help="Download a dataset from the catalog (only when you ask) and check its SHA-256.",
        description="Datasets that need a login or a manual step print instructions instead (exit code 3).",
    )
    p.add_argument("name", help="dataset name (see 'streetwatch dataset list')")
    p.add_argument("--dest", type=Path, default=Path("data/downloads"), help="folder to save into")
    p.add_argument("--catalog", type=Path, help="catalog.yaml to use (default: the repository's)")
    p.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds")
    p.set_defaults(handler=_fetch)


def _register_list(commands: Any) -> None:
    p = commands.add_parser("list", help="List the public datasets of the catalog and the classes they give.")
    p.add_argument("--catalog", type=Path, help="catalog.yaml to use (default: the repository's)")
    p.set_defaults(handler=_list)


def _register_from_reviews(commands: Any) -> None:
    p = commands.add_parser(
        "from-reviews",
        help="Turn dispatchers' confirm / reject decisions into a YOLO set (clean frames from the server).",
        description="Confirmed cases label their box (the reviewer's corrected box when there is one) with "
        "the detector's class or the class the reviewer named; rejected ones with a named class label it "
        "so; 'not a violation' rejections are hard negatives (images without its box); 'permitted' keeps "
        "its class and is listed; duplicates and bad images are skipped; other rejections are negatives "
        "(listed in review_export.json). Boxes the reviewer added and attribute classes (truck load) are "
        "written too.",
    )
    p.add_argument("--server", required=True, help="StreetWatch server base URL, e.g. http://server:8000")
    p.add_argument(
        "--token",
        default=None,
        help="API token, viewer is enough (default: $STREETWATCH_TOKEN, which keeps it out of `ps`)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder (YOLO, all taxonomy classes)")
    p.add_argument(
        "--cache",
        type=Path,
        default=Path("data/review-frames"),
        help="downloaded clean frames, by SHA-256; reused by later exports (default: data/review-frames)",
    )
    p.add_argument("--since", help="only cases changed at or after this ISO time")
    p.add_argument("--frames", type=int, default=3, help="clean frames per case, best first (default 3)")
    p.add_argument(
        "--negatives",
        choices=["list", "background"],
        default="list",
        help="rejected cases without a label or a 'not a violation' reason: only list them (default), or "
        "also write them as images without boxes (only right when reviewers judged the whole frame)",
    )
    p.add_argument("--taxonomy", type=Path, help="classes.yaml to use (default: the repository's)")
    p.add_argument("--overwrite", action="store_true", help="replace an output folder written earlier")
    p.set_defaults(handler=_from_reviews)


def _from_reviews(args: argparse.Namespace) -> int:
    import os
    from datetime import datetime

    from streetwatch.errors import DatasetError
    from training.datasets.from_reviews import ReviewClient, export_reviews
    from training.datasets.taxonomy import load_taxonomy

    try:
        since = datetime.fromisoformat(args.since) if args.since else None
    except ValueError:
        raise DatasetError(f"--since {args.since!r} is not an ISO time (e.g. 2026-05-01T00:00:00Z)") from None
    if args.frames < 1:
        raise DatasetError("--frames must be at least 1")
    client = ReviewClient(args.server, args.token or os.environ.get("STREETWATCH_TOKEN", ""))
    report = export_reviews(
        client,
        args.out,
        args.cache,
        taxonomy=load_taxonomy(args.taxonomy),
        since=since,
        frames=args.frames,
        negatives=args.negatives,
        overwrite=args.overwrite,
    )
    print(report.summary())
    print(f"wrote {args.out / 'data.yaml'}; details: {args.out / 'review_export.json'}")
    return 0


def _class_list(spec: str, taxonomy: Any) -> tuple[str, ...]:
    from streetwatch.errors import DatasetError

    if spec == "trained":
        return tuple(taxonomy.trained_class_names())
    if spec == "all":
        return tuple(taxonomy.class_names())
    if spec == "input":
        raise DatasetError("--classes input applies to 'dataset split' only")
    wanted = {name.strip() for name in spec.split(",") if name.strip()}
    unknown = sorted(wanted - set(taxonomy.class_names()))
    if unknown:
        raise DatasetError(f"--classes names {unknown} are not in the taxonomy")
    return tuple(name for name in taxonomy.class_names() if name in wanted)


def _import(args: argparse.Namespace) -> int:
    from training.datasets.importers import import_dataset, resolve_mapping
    from training.datasets.taxonomy import load_taxonomy
    from training.datasets.yolo_writer import check_output_folder, write_yolo_dataset

    taxonomy = load_taxonomy(args.taxonomy)
    path = args.path.resolve()  # "." has no name to take the source's from
    source = args.source or path.stem
    classes = _class_list(args.classes, taxonomy)
    check_output_folder(args.out, args.overwrite, [path] + ([args.images] if args.images else []))
    names = [n.strip() for n in args.names.split(",")] if args.names else _catalog_names(args, source)
    mapping = resolve_mapping(taxonomy, source, args.mapping)
    ignored = [n.strip() for n in (args.ignore or "").split(",") if n.strip()]
    mapping.update({name: None for name in ignored if name not in mapping})
    dataset = import_dataset(
        args.format,
        path,
        source=source,
        taxonomy=taxonomy,
        mapping=mapping,
        names=names,
        images_dir=args.images,
        verify_images=not args.no_verify,
    )
    print(dataset.report.summary())
    dataset.check_mapped(
        "name a mapping with --mapping (classes.yaml source_mappings) or give the source's class "
        "names with --names"
    )
    images = dataset.trainable_images()
    if len(images) < len(dataset.images):
        unknown = ",".join(sorted(dataset.report.unknown_classes))
        print(
            f"left out {len(dataset.images) - len(images)} images with boxes of classes the mapping does "
            f"not know ({unknown}): written without those boxes they would teach the objects as "
            f"background. Map them in classes.yaml, or pass --ignore {unknown} if they are not ours."
        )
    if not images:
        print(f"no usable images in {args.path}; nothing written")
        return 1
    splits: dict[str, list[Any]] = {}
    for image in images:
        splits.setdefault(image.origin_split or "train", []).append(image)
    written = write_yolo_dataset(
        splits,
        args.out,
        classes,
        source_classes={source: _labelled_classes(mapping, images, taxonomy)},
        link=not args.copy,
        overwrite=args.overwrite,
    )
    report_file = written.out_dir / "import_report.json"
    report_file.write_text(
        json.dumps(dataset.report.to_json(), indent=1, ensure_ascii=False), encoding="utf-8"
    )
    _print_dropped(written.dropped_boxes, classes)
    print(
        f"wrote {written.data_yaml} ({', '.join(f'{s} {n}' for s, n in written.images_per_split.items())});"
    )
    print(f"every problem with its file and reason: {report_file}")
    return 0


def _labelled_classes(mapping: dict[str, str | None], images: list[Any], taxonomy: Any) -> list[str]:
    """The classes of ours this source labels, for the manifest: what its mapping maps to.

    Without a named mapping (the source uses our names already) that would claim every class of
    the taxonomy; then the classes that actually occur in its boxes are the honest answer.
    """
    if {k: v for k, v in mapping.items() if v is not None} == taxonomy.identity_mapping():
        seen = {box.class_name for image in images for box in image.boxes}
    else:
        seen = {target for target in mapping.values() if target is not None}
    return [name for name in taxonomy.class_names() if name in seen]


def _catalog_names(args: argparse.Namespace, source: str) -> list[str] | None:
    """YOLO class names from the catalog entry named like the source, when the set has no data.yaml."""
    from training.datasets.catalog import load_catalog
    from training.datasets.importers.yolo import find_data_yaml

    if args.format != "yolo" or find_data_yaml(args.path) is not None:
        return None
    entry = next((e for e in load_catalog().datasets if e.name == source), None)
    return list(entry.names) if entry is not None and entry.names else None


def _print_dropped(dropped: Any, classes: tuple[str, ...]) -> None:
    if dropped:
        text = ", ".join(f"{name} {n}" for name, n in sorted(dropped.items()))
        print(f"boxes left out (not in --classes {','.join(classes)}): {text}")


def _read_ours(folder: Path, taxonomy: Any) -> Any:
    """A YOLO folder we wrote (import, merge, split, from-reviews), in our classes."""
    from streetwatch.errors import DatasetError
    from training.datasets.importers.yolo import MANIFEST_NAME, import_yolo

    if not folder.is_dir():
        raise DatasetError(f"{folder} does not exist or is not a folder")
    if not (folder / MANIFEST_NAME).is_file():
        raise DatasetError(
            f"{folder} was not written by 'streetwatch dataset import' (no {MANIFEST_NAME}); "
            "import it first, which maps its classes to ours"
        )
    dataset = import_yolo(folder, source=folder.name, mapping=taxonomy.identity_mapping())
    dataset.check_mapped("its data.yaml names are not classes of this taxonomy (see --taxonomy)")
    return dataset


def _check_split_args(args: argparse.Namespace, inputs: list[Path]) -> None:
    """Cheap checks first: a bad fraction or output folder should not wait for the duplicate search."""
    from streetwatch.errors import DatasetError
    from training.datasets.yolo_writer import check_output_folder

    if not 0.0 < args.val_fraction < 1.0:
        raise DatasetError(f"--val-fraction must be between 0 and 1 (exclusive), got {args.val_fraction}")
    resolved = [folder.resolve() for folder in inputs]
    if len(set(resolved)) != len(resolved):
        raise DatasetError("the same input folder is given twice; each image would be merged twice")
    check_output_folder(args.out, args.overwrite, inputs)


def _input_classes(folder: Path, taxonomy: Any) -> tuple[str, ...]:
    """The class list of a folder we wrote, as its data.yaml has it (split keeps the class ids)."""
    from training.datasets.importers.yolo import read_class_names

    return _class_list(",".join(read_class_names(folder)), taxonomy)


def _merge(args: argparse.Namespace) -> int:
    from training.datasets.build import SplitPolicy, build_from_images
    from training.datasets.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(args.taxonomy)
    _check_split_args(args, args.inputs)
    datasets = [_read_ours(folder, taxonomy) for folder in args.inputs]
    images = [image for dataset in datasets for image in dataset.images]
    report = build_from_images(
        images,
        args.out,
        _class_list(args.classes, taxonomy),
        imports=[d.report for d in datasets],
        source_classes=_manifest_source_classes(args.inputs),
        split_policy=SplitPolicy(args.split),
        val_fraction=args.val_fraction,
        seed=args.seed,
        remove_duplicates=args.drop_duplicates,
        link=not args.copy,
        overwrite=args.overwrite,
    )
    print(report.summary())
    return 0


def _split(args: argparse.Namespace) -> int:
    from training.datasets.build import SplitPolicy, build_from_images
    from training.datasets.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(args.taxonomy)
    _check_split_args(args, [args.input])
    dataset = _read_ours(args.input, taxonomy)
    if args.classes == "input":
        classes = _input_classes(args.input, taxonomy)
    else:
        classes = _class_list(args.classes, taxonomy)
    report = build_from_images(
        dataset.images,
        args.out,
        classes,
        imports=[dataset.report],
        source_classes=_manifest_source_classes([args.input]),
        split_policy=SplitPolicy.groups,
        val_fraction=args.val_fraction,
        seed=args.seed,
        link=not args.copy,
        overwrite=args.overwrite,
    )
    print(report.summary())
    return 0


def _manifest_source_classes(folders: list[Path]) -> dict[str, list[str]]:
    from training.datasets.importers.yolo import MANIFEST_NAME

    result: dict[str, list[str]] = {}
    for folder in folders:
        manifest = folder / MANIFEST_NAME
        if manifest.is_file():
            result.update(json.loads(manifest.read_text(encoding="utf-8")).get("source_classes", {}))
    return result


def _stats(args: argparse.Namespace) -> int:
    from streetwatch.errors import DatasetError
    from training.datasets.importers.yolo import import_yolo, read_class_names
    from training.datasets.stats import compute_stats, format_stats, write_plots

    if not args.input.is_dir():
        raise DatasetError(f"{args.input} does not exist or is not a folder")
    names = read_class_names(args.input, [n.strip() for n in args.names.split(",")] if args.names else None)
    dataset = import_yolo(args.input, source=args.input.name, mapping={n: n for n in names}, names=names)
    splits: dict[str, list[Any]] = {}
    for image in dataset.images:
        splits.setdefault(image.origin_split or "all", []).append(image)
    stats = compute_stats(splits)
    print(format_stats(stats))
    if dataset.report.problems:
        print("\n" + dataset.report.summary())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(stats.to_json(), indent=1, ensure_ascii=False), encoding="utf-8")
        print(f"numbers: {args.json}")
    if args.plots:
        for path in write_plots(stats, args.plots):
            print(f"plot: {path}")
    return 0


def _fetch(args: argparse.Namespace) -> int:
    from training.datasets.catalog import load_catalog
    from training.datasets.fetch import ManualDownloadRequired, fetch_dataset

    entry = load_catalog(args.catalog).get(args.name)
    try:
        result = fetch_dataset(entry, args.dest, timeout_s=args.timeout)
    except ManualDownloadRequired as exc:
        print(exc)
        return EXIT_MANUAL_DOWNLOAD
    print(f"saved {result.path} ({result.size_bytes} bytes), sha256 {result.sha256}")
    if result.pinned:
        print("SHA-256 matches the catalog.")
    else:
        print(f"not pinned in the catalog: check the file, then set sha256: {result.sha256}")
    print(f"licence: {entry.licence}. Next: streetwatch dataset import {entry.format.value} <folder or file>")
    print(f"  --source {entry.name} --mapping {entry.class_mapping} --out <dir>")
    return 0


def _list(args: argparse.Namespace) -> int:
    from training.datasets.catalog import load_catalog

    for entry in load_catalog(args.catalog).datasets:
        how = "fetch" if entry.download is not None else "manual"
        classes = ",".join(entry.classes)
        print(f"{entry.name:<26}{entry.access.value:<11}{how:<8}{classes:<50} {entry.licence}")
    return 0

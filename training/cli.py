"""``streetwatch train``, ``streetwatch evaluate`` and ``streetwatch model ...``.

Heavy imports (torch, ultralytics, onnx) happen inside the handlers, so ``--help`` stays
fast and works without the ``train`` extra.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from training.registry import Registry

#: The repository's registry; other locations via ``--registry``.
DEFAULT_REGISTRY = Path(__file__).resolve().parents[1] / "models" / "registry.json"


def register(subparsers: Any) -> None:
    _register_train(subparsers)
    _register_evaluate(subparsers)
    _register_model(subparsers)


def _register_train(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="Train a detector with ultralytics (offline, local weights only).",
        description="Train or resume a detector. Weights must be a local .pt (e.g. from 'model convert') "
        "or a model .yaml (from scratch); nothing is ever downloaded.",
    )
    p.add_argument("--data", type=Path, help="YOLO dataset yaml (required unless --resume)")
    p.add_argument(
        "--weights", type=Path, help="starting .pt checkpoint or model .yaml (required unless --resume)"
    )
    p.add_argument("--project", type=Path, required=True, help="folder for runs")
    p.add_argument(
        "--name",
        default="train",
        help="run name (sub-folder of --project; an earlier run is never overwritten)",
    )
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--imgsz", type=int, default=416)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--close-mosaic", type=int, default=3, help="epochs at the end without mosaic")
    p.add_argument("--cache", choices=["ram", "disk", "none"], default="none", help="image cache")
    p.add_argument("--optimizer", default="auto", help="ultralytics optimizer (auto, AdamW, SGD, ...)")
    p.add_argument("--lr0", type=float, help="initial learning rate (ignored by optimizer auto)")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--fraction", type=float, default=1.0, help="use this fraction of the train images")
    p.add_argument("--no-plots", action="store_true", help="skip label/batch plots")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run <project>/<name> from its last.pt, with the run's own "
        "settings (data, epochs, sizes: the other options are not used)",
    )
    p.set_defaults(handler=_train)


def _train(args: argparse.Namespace) -> int:
    from streetwatch.errors import ConfigError
    from training.train import TrainConfig, run_dir, train

    if not args.resume and (args.data is None or args.weights is None):
        raise ConfigError("--data and --weights are required to start a run (only --resume goes without)")
    config = TrainConfig(
        data=args.data or Path(),
        weights=args.weights or Path(),
        project=args.project,
        name=args.name,
        epochs=args.epochs,
        imgsz=args.imgsz,
        batch=args.batch,
        workers=args.workers,
        close_mosaic=args.close_mosaic,
        cache=False if args.cache == "none" else args.cache,
        fraction=args.fraction,
        plots=not args.no_plots,
        warmup_epochs=args.warmup_epochs,
        extra={"optimizer": args.optimizer, **({"lr0": args.lr0} if args.lr0 is not None else {})},
    )
    try:
        run = train(config, resume=args.resume)
    except KeyboardInterrupt:
        last = run_dir(config) / "weights" / "last.pt"
        if last.is_file():
            print(f"interrupted: the last finished epoch is in {last}; continue with --resume")
        raise
    print(f"run folder: {run}\nbest weights: {run / 'weights' / 'best.pt'}")
    return 0


def _register_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="Evaluate a .pt or .onnx detector: mAP, per-class P/R, plots, JSON summary.",
    )
    p.add_argument("model", type=Path, help=".pt or .onnx (FP32, FP16 or INT8)")
    p.add_argument("--data", type=Path, required=True, help="YOLO dataset yaml")
    p.add_argument("--out", type=Path, required=True, help="folder for summary.json and plots")
    p.add_argument("--split", default="val", help="dataset split (default: val)")
    p.add_argument("--imgsz", type=int, help="input size (default: an ONNX model's own, 416 for .pt)")
    p.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate

    summary = evaluate(args.model, args.data, args.out, imgsz=args.imgsz, split=args.split)
    print(f"{'class':<14}{'P':>8}{'R':>8}{'AP50':>8}{'AP50-95':>9}{'boxes':>7}")
    for name, m in summary.per_class.items():
        print(f"{name:<14}{m.precision:>8.3f}{m.recall:>8.3f}{m.ap50:>8.3f}{m.ap50_95:>9.3f}{m.instances:>7}")
    print(
        f"{'all':<14}{summary.precision:>8.3f}{summary.recall:>8.3f}{summary.map50:>8.3f}{summary.map50_95:>9.3f}"
    )
    print(f"summary: {args.out / 'summary.json'}")
    return 0


def _register_model(subparsers: Any) -> None:
    model = subparsers.add_parser("model", help="Convert, export, promote and list detector models.")
    sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    conv = sub.add_parser(
        "convert",
        help="Turn an original YOLOv5 v6 COCO checkpoint into an ultralytics training start.",
    )
    conv.add_argument("source", type=Path, help="original YOLOv5 .pt (e.g. yolov5n v6.1)")
    conv.add_argument("output", type=Path, help="ultralytics checkpoint to write (.pt)")
    conv.add_argument("--data", type=Path, required=True, help="dataset yaml whose class names the head gets")
    conv.add_argument("--arch", default="yolov5nu.yaml", help="ultralytics architecture yaml")
    conv.set_defaults(handler=_convert)

    rec = sub.add_parser(
        "recover",
        help="Turn a shipped ONNX detector back into an ultralytics checkpoint to fine-tune it further.",
    )
    rec.add_argument(
        "onnx", type=Path, help="exported detector (e.g. models/streetwatch-det/streetwatch-det.onnx)"
    )
    rec.add_argument("output", type=Path, help="ultralytics checkpoint to write (.pt)")
    rec.add_argument("--calib", type=Path, required=True, help="folder of real photos for the batch norms")
    rec.add_argument("--count", type=int, default=64, help="calibration photos to use")
    rec.add_argument("--arch", default="yolov5nu.yaml", help="ultralytics architecture yaml")
    rec.set_defaults(handler=_recover)

    exp = sub.add_parser("export", help="Export .pt to self-describing ONNX: fp32, fp16, int8.")
    exp.add_argument("weights", type=Path, help="trained ultralytics .pt")
    exp.add_argument("--out-dir", type=Path, required=True)
    exp.add_argument("--name", default="streetwatch-det", help="model name (metadata streetwatch_model)")
    exp.add_argument("--version", required=True, help="model version written into the metadata")
    exp.add_argument("--data", type=Path, required=True, help="training dataset yaml (hashed into data_hash)")
    exp.add_argument("--imgsz", type=int, default=416, help="square input size (default 416)")
    exp.add_argument(
        "--formats",
        default="fp32,int8",
        help="comma list of fp32, fp16, int8 (default fp32,int8; the FP32 file is always written: "
        "the others are made from it)",
    )
    exp.add_argument(
        "--calib", type=Path, help="folder of real images for INT8 calibration (needed for int8)"
    )
    exp.add_argument(
        "--calib-count",
        type=int,
        default=200,
        help="calibration photos to sample (default 200, or all if fewer)",
    )
    exp.add_argument("--overwrite", action="store_true", help="replace files of this version written earlier")
    exp.add_argument(
        "--per-tensor", action="store_true", help="one INT8 scale per weight tensor (default: per channel)"
    )
    exp.set_defaults(handler=_export)

    pro = sub.add_parser(
        "promote",
        help="Make an evaluated ONNX the current model, unless it is worse than the current one.",
        description="Make an evaluated ONNX the current model, unless it is worse than the current one. "
        "A detector is judged on mAP (summary.json of 'streetwatch evaluate'); a classifier (the truck "
        "load model) on accuracy per class over held-out crops (python -m training.truck_load.evaluate "
        "--json), both against the current model on the same evaluation set.",
    )
    pro.add_argument("model", type=Path, help="candidate ONNX (name, version, data hash read from metadata)")
    pro.add_argument(
        "--eval",
        type=Path,
        required=True,
        help="summary.json from 'streetwatch evaluate' (a detector) or the report of "
        "training.truck_load.evaluate --json (a classifier)",
    )
    pro.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    pro.add_argument(
        "--new-registry",
        action="store_true",
        help="start --registry if it does not exist (otherwise a mistyped path is an error, "
        "not an empty registry that accepts anything)",
    )
    pro.add_argument("--parent", help="parent version (default: the current model)")
    pro.add_argument("--notes", default="")
    pro.add_argument(
        "--class-tolerance",
        type=float,
        default=0.02,
        help="allowed drop of a class's AP50 (a detector) or accuracy (a classifier)",
    )
    pro.add_argument(
        "--split",
        type=Path,
        help="a classifier's labelled crops, split.csv (default: datasets/truck_load/split.csv)",
    )
    pro.add_argument(
        "--baseline-eval",
        type=Path,
        metavar="SUMMARY",
        help="re-baseline the gate after the evaluation set was corrected: the CURRENT model's file "
        "evaluated on the candidate's set (same kind of file as --eval); the candidate is compared "
        "against it instead of the stored metrics, and its entry records the new eval hash",
    )
    pro.set_defaults(handler=_promote)

    sig = sub.add_parser(
        "sign",
        help="Sign a registered model with the fleet's release key (recorded in signatures.json beside "
        "the registry) so boxes accept it over the air.",
    )
    sig.add_argument("name", help="model name in the registry")
    sig.add_argument("version", help="its version")
    sig.add_argument("--key", type=Path, required=True, help="private key from 'streetwatch fleet keygen'")
    sig.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    sig.set_defaults(handler=_sign)

    lst = sub.add_parser("list", help="List registered models; * marks the current one.")
    lst.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY)
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(handler=_list)


def _sign(args: argparse.Namespace) -> int:
    # Only the shared reader: signing needs neither torch nor the training extra.
    from streetwatch.releases import sign_model

    signed = sign_model(args.registry, args.name, args.version, args.key)
    release = signed.release
    print(f"signed model {release.name} {release.version}: {release.size} bytes, sha256 {release.sha256}")
    print(f"recorded in {args.registry.parent / 'signatures.json'}")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from training.convert_yolov5 import convert
    from training.data_hash import class_names

    report = convert(args.source, args.output, class_names(args.data), arch=args.arch)
    print(report.summary())
    print(f"wrote {args.output}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    from training.export import calibration_images
    from training.onnx_to_checkpoint import recover

    report = recover(args.onnx, args.output, calibration_images(args.calib, args.count), arch=args.arch)
    print(
        f"{report.tensors} tensors, {report.batch_norms} batch norms recalibrated on "
        f"{report.calibration_photos} photos; largest output difference to ONNX Runtime {report.max_diff:.5f}"
    )
    print(f"wrote {args.output}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from streetwatch.errors import ConfigError
    from training.data_hash import class_names, dataset_hash
    from training.export import calibration_images, export_fp16, export_fp32, export_int8

    if args.weights.suffix != ".pt":
        raise ConfigError(
            f"{args.weights} is not a .pt checkpoint; export takes the weights a training run wrote"
        )
    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    unknown = formats - {"fp32", "fp16", "int8"}
    if unknown:
        raise ConfigError(f"unknown export formats {sorted(unknown)}; use fp32, fp16, int8")
    if "int8" in formats and args.calib is None:
        raise ConfigError("int8 needs --calib FOLDER with real images for calibration")
    stem = f"{args.name}-{args.version}"
    suffixes = {"fp32": "", "fp16": "-fp16", "int8": "-int8"}
    existing = [args.out_dir / f"{stem}{suffixes[f]}.onnx" for f in sorted(formats | {"fp32"})]
    existing = [path for path in existing if path.exists()]
    if existing and not args.overwrite:
        # A version names one file for good: the registry's sha256 and every eval summary refer to it.
        raise ConfigError(
            f"{existing[0]} exists; give the candidate a new --version (or --overwrite an unregistered one)"
        )
    # Checked before anything is written: a bad calibration folder must not leave half an export.
    images = calibration_images(args.calib, args.calib_count) if "int8" in formats else []
    fp32 = export_fp32(
        args.weights,
        args.out_dir / f"{stem}.onnx",
        args.name,
        args.version,
        dataset_hash(args.data),
        args.imgsz,
        class_names=class_names(args.data),
    )
    print(f"fp32: {fp32}")
    if "fp16" in formats:
        print(f"fp16: {export_fp16(fp32, args.out_dir / f'{stem}-fp16.onnx')}")
    if "int8" in formats:
        int8 = export_int8(fp32, args.out_dir / f"{stem}-int8.onnx", images, per_channel=not args.per_tensor)
        print(f"int8: {int8}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from streetwatch.errors import ConfigError
    from training.evaluate import EvalSummary
    from training.export import read_metadata
    from training.registry import Registry

    if not args.model.is_file():
        raise ConfigError(f"model not found: {args.model}")
    meta = read_metadata(args.model)
    missing = [k for k in ("streetwatch_model", "version", "data_hash") if not meta.get(k)]
    if missing:
        raise ConfigError(f"{args.model} lacks metadata {missing}; export it with 'streetwatch model export'")
    _check_registry_exists(args.registry, allow_new=args.new_registry)
    registry = Registry(args.registry)
    if meta.get("task") == "classify":
        return _promote_classifier(args, registry)
    decision = registry.promote(
        args.model,
        EvalSummary.load(args.eval),
        name=meta["streetwatch_model"],
        version=meta["version"],
        data_hash=meta["data_hash"],
        parent=args.parent,
        notes=args.notes,
        class_tolerance=args.class_tolerance,
        baseline=EvalSummary.load(args.baseline_eval) if args.baseline_eval else None,
    )
    print(f"{meta['streetwatch_model']} {meta['version']}: {decision.explain()}")
    return 0 if decision.accepted else 1


def _promote_classifier(args: argparse.Namespace, registry: Registry) -> int:
    from training.truck_load.register import DEFAULT_SPLIT, entry_for, promote_classifier

    entry = entry_for(args.model, args.eval, args.split or DEFAULT_SPLIT, registry, args.notes)
    if args.parent:
        entry.parent = args.parent
    decision = promote_classifier(registry, entry, args.baseline_eval, args.class_tolerance)
    print(f"{entry.name} {entry.version}: {decision.explain()}")
    return 0 if decision.accepted else 1


def _list(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from streetwatch.file_hash import sha256_file
    from training.registry import Registry, metric_label

    _check_registry_exists(args.registry, allow_new=False)
    registry = Registry(args.registry)
    if args.json:
        print(
            json.dumps(
                {"current": registry.current, "models": [asdict(m) for m in registry.models]}, indent=2
            )
        )
        return 0
    if not registry.models:
        print(f"no models registered in {args.registry}")
    hashes: dict[Path, str | None] = {}
    for m in registry.models:
        mark = "*" if registry.current.get(m.name) == m.version else " "
        figure = metric_label(m.metrics)
        path = registry.file_of(m)
        if path not in hashes:
            hashes[path] = sha256_file(path) if path.is_file() else None
        # A later version may have been shipped under the same path: then this one lives only in
        # the repository's history (or wherever it was kept), and the registry's sha256 finds it.
        state = (
            ""
            if hashes[path] == m.sha256
            else "  (file missing)"
            if hashes[path] is None
            else "  (file now holds another build)"
        )
        # A re-baselined entry's figures are on another evaluation set than its parent's: say so.
        gate = f"  (gate re-baselined: {m.gate['baseline']})" if m.gate.get("baseline") else ""
        print(f"{mark} {m.name} {m.version}  {figure}  {m.file}  sha256 {m.sha256[:12]}{state}{gate}")
    return 0


def _check_registry_exists(path: Path, allow_new: bool) -> None:
    from streetwatch.errors import ConfigError

    if not path.exists() and not allow_new:
        raise ConfigError(f"model registry {path} does not exist (pass --new-registry to start one there)")

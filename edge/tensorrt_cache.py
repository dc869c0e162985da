"""TensorRT engines built before the pipeline starts, cached per model hash, TensorRT version and GPU.

onnxruntime's TensorRT provider builds an FP16 engine the first time it opens a model: minutes
on an Orin Nano, during which a service would look hung (and a watchdog would kill it). Run
this first (the systemd unit's ``ExecStartPre``, the container's entry point)::

    python -m edge.tensorrt_cache --config /etc/streetwatch/edge.yaml

It opens every model the box may run (the config's detectors and load classifier, and the
installed update versions, so a rollback is quick too) with the TensorRT provider, runs one
warm-up frame, and logs progress every ``--progress-every`` seconds while TensorRT works (and
says it to systemd as ``STATUS=``). Engines land in ``<cache root>/<key>/`` where the key is
the model's SHA-256, the TensorRT version and the GPU: an engine built by another TensorRT or
for another GPU is never loaded (onnxruntime itself does not check). :func:`engine_cache_dir`
is also what :mod:`edge.detector.session` passes to the provider, so the pipeline finds them.

On a machine without the TensorRT provider (a PC, CI) there is nothing to build: exit 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from streetwatch.errors import StreetWatchError

if TYPE_CHECKING:
    from edge.config import DeviceConfig
from streetwatch.file_hash import sha256_file

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
#: Written in each cache folder once its engine is built and warmed up.
BUILD_RECORD = "build.json"
#: Where JetPack puts the TensorRT libraries (libnvinfer.so.<version>) when the Python module is absent.
_LIB_DIRS = (
    Path("/usr/lib/aarch64-linux-gnu"),
    Path("/usr/lib/x86_64-linux-gnu"),
    Path("/usr/local/cuda/lib64"),
)
_DEVICE_TREE_MODEL = Path("/proc/device-tree/model")


def cache_root() -> Path:
    """``$STREETWATCH_TRT_CACHE``, else ``$XDG_CACHE_HOME/streetwatch/tensorrt`` (``~/.cache/...``)."""
    explicit = os.environ.get("STREETWATCH_TRT_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "streetwatch" / "tensorrt"


def tensorrt_version(lib_dirs: Iterable[Path] = _LIB_DIRS) -> str:
    """The installed TensorRT's version ("none" without one): the Python module, else the library."""
    try:
        import tensorrt  # JetPack's, on a Jetson only

        return str(tensorrt.__version__)
    except ImportError:
        pass
    for folder in lib_dirs:
        versions = sorted(
            (
                m.group(1)
                for p in folder.glob("libnvinfer.so.*")
                if (m := re.fullmatch(r"libnvinfer\.so\.([\d.]+)", p.name))
            ),
            key=lambda v: [int(x) for x in v.split(".") if x],
        )
        if versions:
            return versions[-1]
    return "none"


def gpu_name(device_tree_model: Path = _DEVICE_TREE_MODEL) -> str:
    """The board (a Jetson's module names its GPU), e.g. "NVIDIA Jetson Orin Nano Developer Kit"."""
    try:
        return device_tree_model.read_bytes().rstrip(b"\0\n").decode("utf-8", "replace") or "unknown"
    except OSError:
        return "unknown"


def cache_key(model_sha256: str, trt_version: str, gpu: str) -> str:
    """A folder name that changes whenever the engine would have to be rebuilt."""
    slug = re.sub(r"[^a-z0-9]+", "-", gpu.lower()).strip("-") or "unknown"
    return f"{model_sha256[:16]}-trt{trt_version}-{slug[:48]}"


def engine_cache_dir(model_path: Path, root: Path | None = None) -> Path:
    """Where ``model_path``'s engine is cached on this machine (created if missing)."""
    key = cache_key(sha256_file(model_path), tensorrt_version(), gpu_name())
    folder = (root or cache_root()) / key
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass(frozen=True)
class BuildRecord:
    model: str
    sha256: str
    tensorrt: str
    gpu: str
    seconds: float
    provider: str


Opener = Callable[[Path], Any]
"""Opens a model on TensorRT and runs one frame; returns the provider that ran it."""


def build_engines(
    models: Sequence[Path],
    opener: Opener,
    *,
    root: Path | None = None,
    progress_every_s: float = 15.0,
    status: Callable[[str], object] = lambda _text: None,
    on_build: Callable[[Path, int, int], object] = lambda _model, _number, _total: None,
) -> list[BuildRecord]:
    """Build (or find cached) the engine of each model; log progress while TensorRT works.

    ``on_build(model, number, total)`` is called as each build begins: in the pipeline
    (:mod:`edge.startup`) it puts the build into telemetry, which then reports every few seconds."""
    records = []
    for number, model in enumerate(models, 1):
        folder = engine_cache_dir(model, root)
        done = folder / BUILD_RECORD
        if done.exists():
            log.info("TensorRT engine %d/%d for %s: cached in %s", number, len(models), model.name, folder)
            records.append(BuildRecord(**json.loads(done.read_text())))
            continue
        what = f"TensorRT engine {number}/{len(models)} for {model.name}"
        log.info("%s: building FP16 engine in %s; the first start takes minutes on a Jetson", what, folder)
        status(f"building {what}")
        on_build(model, number, len(models))
        started = time.monotonic()
        finished = threading.Event()

        def report(what: str = what, started: float = started, finished: threading.Event = finished) -> None:
            while not finished.wait(progress_every_s):
                elapsed = time.monotonic() - started
                log.info("%s: still building (%.0f s so far)", what, elapsed)
                status(f"building {what} ({elapsed:.0f} s)")

        reporter = threading.Thread(target=report, name="trt-progress", daemon=True)
        reporter.start()
        try:
            provider = str(opener(model))
        finally:
            finished.set()
            reporter.join()
        record = BuildRecord(
            model=str(model),
            sha256=sha256_file(model),
            tensorrt=tensorrt_version(),
            gpu=gpu_name(),
            seconds=round(time.monotonic() - started, 1),
            provider=provider,
        )
        done.write_text(json.dumps(asdict(record), indent=2) + "\n")
        log.info("%s: built in %.1f s on %s", what, record.seconds, provider)
        records.append(record)
    status("TensorRT engines ready")
    return records


def open_on_tensorrt(model: Path) -> str:
    """The real opener: the pipeline's own session code, then one frame of zeros (the warm-up)."""
    import numpy as np

    from edge.detector.session import open_session

    session = open_session(model, [TENSORRT], label=model.name)
    provider = session.get_providers()[0]
    if provider != TENSORRT:
        raise StreetWatchError(f"TensorRT did not start for {model} (onnxruntime fell back to {provider})")
    feed = {}
    for tensor in session.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in tensor.shape]
        feed[tensor.name] = np.zeros(shape, dtype=np.float16 if "float16" in tensor.type else np.float32)
    session.run(None, feed)
    return str(provider)


def models_of(config_path: Path) -> list[Path]:
    """Every model a box with this config may run: its detectors, the load classifier, installed updates."""
    from edge.config import load_config

    return models_in(load_config(config_path))


def models_in(config: DeviceConfig) -> list[Path]:
    """:func:`models_of` for a config already loaded (the pipeline's, in-process)."""
    found = [Path(d.model) for d in config.detectors]
    if config.truck_load is not None:
        found.append(Path(config.truck_load.model))
    if config.updates is not None:
        found += sorted(Path(config.updates.models_dir).glob("**/*.onnx"))
    unique = list(dict.fromkeys(p.resolve() for p in found))
    return [p for p in unique if p.is_file()]


def _systemd_status() -> Callable[[str], object]:
    """``STATUS=`` to systemd (``systemctl status`` shows it) when run under it; else nothing."""
    try:
        from edge.sd_notify import SystemdNotifier
    except ImportError:
        return lambda _text: None
    return SystemdNotifier.from_environment().status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge.tensorrt_cache", description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, required=True, help="The box's edge.yaml.")
    parser.add_argument("--progress-every", type=float, default=15.0, help="Seconds between progress lines.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        import onnxruntime as ort

        if TENSORRT not in ort.get_available_providers():
            log.info("no TensorRT provider in this onnxruntime build: no engine to build")
            return 0
        build_engines(
            models_of(args.config),
            open_on_tensorrt,
            progress_every_s=args.progress_every,
            status=_systemd_status(),
        )
    except StreetWatchError as exc:
        # The pipeline can still start (on CUDA or CPU, slower): say why, do not block the service.
        log.error("TensorRT engines not built: %s", exc)
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())

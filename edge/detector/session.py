"""Open an onnxruntime session: providers in order of preference, threads, errors that say what to do."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from streetwatch.errors import ModelFormatError, ModelNotFoundError

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"


def cpu_threads() -> int:
    """Intra-op threads: the cores this process may use, capped at 4.

    On a 2-core box both cores go to the convolution; more threads than cores only
    adds context switches, and beyond ~4 a nano model stops scaling.
    """
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))


def choose_providers(preferred: list[str], available: list[str]) -> list[str]:
    """The preferred providers that this onnxruntime build has, in order; CPU always last as a fallback."""
    chosen = [p for p in preferred if p in available]
    if CPU not in chosen:
        chosen.append(CPU)
    return chosen


def _provider_options(provider: str, model_path: Path) -> dict[str, Any]:
    if provider == "TensorrtExecutionProvider":
        # Building a TensorRT engine takes minutes on a Jetson: use the engine python -m
        # edge.tensorrt_cache built before the service started (keyed by model, TensorRT and GPU).
        from edge.tensorrt_cache import engine_cache_dir

        cache = engine_cache_dir(model_path)
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache), "trt_fp16_enable": True}
    return {}


def open_session(model_path: Path, preferred: list[str], label: str, threads: int | None = None) -> Any:
    """An ``onnxruntime.InferenceSession`` on the best available provider (one log line says which).

    ``threads``: intra-op threads on CPU (default :func:`cpu_threads`); the pipeline asks for
    fewer when it runs several frames at once on the same session.
    """
    import onnxruntime as ort  # heavy: only when a model is actually loaded

    if not model_path.is_file():
        raise ModelNotFoundError(
            f"model file {model_path} does not exist: put the ONNX file there or fix 'model' in the config "
            "(the shipped COCO model is models/yolox_nano/yolox_nano.onnx)"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_threads()
    options.inter_op_num_threads = 1
    # No busy-waiting between ops: spinning workers take the cores that the pipeline's decode and
    # post-processing threads (and everything else on a 2-core box) need. Measured here under load:
    # yolov8n at 320, 2 threads, 72 ms with spinning vs 33 ms without.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # onnxruntime's own warnings (e.g. unused initialisers) are noise here
    available = ort.get_available_providers()
    providers = choose_providers(preferred, available)
    try:
        session = _create(ort, model_path, options, providers)
    except Exception as exc:
        if providers == [CPU]:
            raise ModelFormatError(f"{model_path} is not an ONNX model onnxruntime can load: {exc}") from exc
        # A GPU provider that is present but cannot start (driver, libraries), or a bad file: try plain CPU.
        log.warning("%s: could not start on %s (%s); retrying on CPU", label, providers[0], exc)
        providers = [CPU]
        try:
            session = _create(ort, model_path, options, providers)
        except Exception as cpu_exc:
            raise ModelFormatError(
                f"{model_path} is not an ONNX model onnxruntime can load: {cpu_exc}"
            ) from cpu_exc
    active = session.get_providers()
    skipped = [p for p in preferred if p not in active]
    if skipped:
        log.info("%s: running on %s (%s not available here)", label, active[0], ", ".join(skipped))
    else:
        log.info("%s: running on %s", label, active[0])
    return session


def _create(ort: Any, model_path: Path, options: Any, providers: list[str]) -> Any:
    with_options = [(p, _provider_options(p, model_path)) for p in providers]
    return ort.InferenceSession(str(model_path), sess_options=options, providers=with_options)

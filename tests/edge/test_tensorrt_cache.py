"""The first-start TensorRT step: cache keys, progress while building, the cached second start.

TensorRT itself cannot run here (no GPU): the opener is a stand-in that takes time like an
engine build; the key derivation, logging, records and the provider options are the real code.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from edge.detector.session import _provider_options
from edge.tensorrt_cache import (
    BUILD_RECORD,
    build_engines,
    cache_key,
    engine_cache_dir,
    gpu_name,
    main,
    tensorrt_version,
)
from streetwatch.file_hash import sha256_file

SHA = "ab" * 32


def test_the_key_changes_with_the_model_the_tensorrt_version_and_the_gpu() -> None:
    key = cache_key(SHA, "10.3.0", "NVIDIA Jetson Orin Nano Developer Kit")
    assert key == "abababababababab-trt10.3.0-nvidia-jetson-orin-nano-developer-kit"
    assert (
        len(
            {
                key,
                cache_key("cd" * 32, "10.3.0", "x"),
                cache_key(SHA, "8.6.2", "x"),
                cache_key(SHA, "10.3.0", "y"),
            }
        )
        == 4
    )


def test_versions_and_board_come_from_the_library_name_and_the_device_tree(tmp_path: Path) -> None:
    libs = tmp_path / "lib"
    libs.mkdir()
    for name in (
        "libnvinfer.so.8.6.2",
        "libnvinfer.so.10.3.0",
        "libnvinfer.so.10",
        "libnvinfer_plugin.so.10.3.0",
    ):
        (libs / name).touch()
    assert tensorrt_version([tmp_path / "absent", libs]) == "10.3.0"
    assert tensorrt_version([tmp_path / "absent"]) == "none"
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson AGX Orin\0")
    assert gpu_name(model) == "NVIDIA Jetson AGX Orin"
    assert gpu_name(tmp_path / "absent") == "unknown"


def test_a_slow_build_logs_progress_then_the_next_start_finds_it_cached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "det.onnx"
    model.write_bytes(b"model bytes")
    opened: list[Path] = []
    statuses: list[str] = []

    def slow_build(path: Path) -> str:
        opened.append(path)
        time.sleep(0.5)
        return "TensorrtExecutionProvider"

    caplog.set_level(logging.INFO, logger="edge.tensorrt_cache")
    first = build_engines(
        [model], slow_build, root=tmp_path / "cache", progress_every_s=0.1, status=statuses.append
    )
    progress = [r.getMessage() for r in caplog.records if "still building" in r.getMessage()]
    assert len(progress) >= 2, caplog.text  # never silent while TensorRT works
    assert any("building TensorRT engine 1/1 for det.onnx (" in s for s in statuses)
    folder = engine_cache_dir(model, tmp_path / "cache")
    record = json.loads((folder / BUILD_RECORD).read_text())
    assert record["sha256"] == sha256_file(model) and record["seconds"] >= 0.5
    assert first[0].provider == "TensorrtExecutionProvider"

    caplog.clear()
    again = build_engines([model], slow_build, root=tmp_path / "cache", progress_every_s=0.1)
    assert len(opened) == 1 and again == first
    assert "cached in" in caplog.text

    model.write_bytes(b"a retrained model")  # another hash: another engine
    build_engines([model], slow_build, root=tmp_path / "cache", progress_every_s=10)
    assert len(opened) == 2


def test_the_pipeline_opens_tensorrt_on_the_folder_the_first_start_step_filled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETWATCH_TRT_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "det.onnx"
    model.write_bytes(b"model bytes")
    options = _provider_options("TensorrtExecutionProvider", model)
    assert options["trt_engine_cache_path"] == str(engine_cache_dir(model))
    assert options["trt_fp16_enable"] is True
    assert _provider_options("CPUExecutionProvider", model) == {}


def test_without_the_tensorrt_provider_there_is_nothing_to_build(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="edge.tensorrt_cache")
    assert main(["--config", str(tmp_path / "not-read.yaml")]) == 0
    assert "no TensorRT provider" in caplog.text

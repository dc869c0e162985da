"""A starting box is never silent: while engines build and models load, telemetry says so (real Mosquitto).

The TensorRT build cannot run on this CPU machine: the engine opener and the detector loader
(the seams of edge.startup) are replaced by ones that block until the collector has received
progress reports, so the test proves the reports arrive *during* the step, not after it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from edge.config import DetectorConfig, DeviceConfig
from edge.pipeline import from_config
from edge.startup import prepare_engines
from streetwatch.errors import StreetWatchError
from tests.edge.mqtt.support import Collector, sink_config
from tests.edge.pipeline_fakes import FixedLocator, ListSource, ScriptedDetector, device_config
from tests.support.mosquitto import MosquittoBroker


def _steps(collector: Collector, step: str) -> list[dict[str, Any]]:
    return [t["startup"] for t in collector.telemetry if (t.get("startup") or {}).get("step") == step]


@pytest.mark.broker
def test_box_reports_engine_build_and_model_load_then_normal_telemetry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREETWATCH_TRT_CACHE", str(tmp_path / "trt"))
    model = tmp_path / "det.onnx"
    model.write_bytes(b"stands in for an ONNX file: only its hash keys the engine cache")
    with MosquittoBroker(tmp_path / "broker") as broker:
        collector = Collector(broker.port)
        try:
            assert collector.subscribed.wait(5)
            # The normal interval (60 s) is far longer than the test: every report seen is a startup one.
            mqtt = sink_config(broker.port, tmp_path / "outbox.sqlite3", startup_report_interval_s=0.3)
            raw = {
                **device_config(tmp_path).model_dump(),
                "sink": mqtt.model_dump(),
                "detectors": [
                    {"model": str(model), "providers": ["TensorrtExecutionProvider", "CPUExecutionProvider"]}
                ],
            }
            config = DeviceConfig.model_validate(raw)

            def slow_build(path: Path) -> str:  # TensorRT compiling: minutes on a Jetson
                assert collector.wait_for(lambda c: len(_steps(c, "building_tensorrt_engine")) >= 3, 20), (
                    f"no build progress while building: {collector.telemetry}"
                )
                return "TensorrtExecutionProvider"

            def slow_load(cfg: DetectorConfig, index: int, threads: int) -> ScriptedDetector:
                assert collector.wait_for(lambda c: len(_steps(c, "loading")) >= 2, 20), collector.telemetry
                return ScriptedDetector()

            pipeline = from_config(
                config,
                locator=FixedLocator(),
                source=ListSource(count=None, delay_s=0.01),
                engine_opener=slow_build,
                detector_loader=slow_load,
            )
            building = _steps(collector, "building_tensorrt_engine")
            assert building[0]["model"] == "det.onnx" and (building[0]["number"], building[0]["total"]) == (
                1,
                1,
            )
            elapsed = [b["elapsed_s"] for b in building]
            assert elapsed == sorted(elapsed) and elapsed[-1] > elapsed[0], elapsed
            assert all(t["frames"] == 0 for t in collector.telemetry)
            starting = [s for s in collector.status if s.get("phase") == "starting"]
            assert starting and starting[0]["state"] == "online"
            assert (tmp_path / "trt").is_dir() and list((tmp_path / "trt").glob("*/build.json"))

            runner = threading.Thread(target=pipeline.run, daemon=True)
            runner.start()
            try:
                # Once running, normal reports: no startup object, frames counted.
                assert collector.wait_for(
                    lambda c: any(t.get("startup") is None and t["frames"] > 0 for t in c.telemetry), 10
                ), collector.telemetry[-3:]
            finally:
                pipeline.stop()
                runner.join(20)
            running = [s for s in collector.status if s.get("phase") == "running"]
            assert running and running[0]["models"] == [{"name": "fake-det", "version": "0"}], (
                collector.status
            )
        finally:
            collector.close()


class _Steps:
    """Records what edge.startup reports (a sink without MQTT)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int, int]] = []

    def starting(self, model: str, step: str, number: int = 1, total: int = 1) -> None:
        self.seen.append((model, step, number, total))

    def running(self) -> None:
        pass


def test_only_models_configured_for_tensorrt_are_built_and_a_failed_build_lets_the_box_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("STREETWATCH_TRT_CACHE", str(tmp_path / "trt"))
    model = tmp_path / "det.onnx"
    model.write_bytes(b"model")
    cpu_only = device_config(tmp_path).model_copy(
        update={"detectors": [DetectorConfig(model=str(model), providers=["CPUExecutionProvider"])]}
    )
    report = _Steps()

    def never(path: Path) -> str:
        raise AssertionError(f"{path} is not configured for TensorRT")

    prepare_engines(cpu_only, report, never)
    assert report.seen == []

    on_trt = cpu_only.model_copy(
        update={"detectors": [DetectorConfig(model=str(model), providers=["TensorrtExecutionProvider"])]}
    )

    def fails(path: Path) -> str:
        raise StreetWatchError("TensorRT did not start (fell back to CPUExecutionProvider)")

    prepare_engines(on_trt, report, fails)  # no exception: the pipeline starts on the next provider
    assert report.seen == [("det.onnx", "building_tensorrt_engine", 1, 1)]
    assert "TensorRT engines not built" in caplog.text and "fell back" in caplog.text

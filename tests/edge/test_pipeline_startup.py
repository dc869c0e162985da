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
from edge.pipeline import EdgePipeline
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

            pipeline = EdgePipeline(
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

"""The pipeline's sinks built from config: the JSON-lines file, and MQTT through a real Mosquitto."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import DeviceConfig
from edge.pipeline import from_config
from edge.sinks import JsonlSink, open_mqtt_sink, open_sink
from streetwatch.errors import ConfigError
from tests.edge.mqtt.support import Collector, sink_config
from tests.edge.pipeline_fakes import FixedLocator, ListSource, ScriptedDetector, device_config
from tests.support.mosquitto import MosquittoBroker


def test_open_sink_builds_the_jsonl_sink_from_config(tmp_path: Path) -> None:
    config = device_config(tmp_path)
    sink, link = open_sink(config)
    assert isinstance(sink, JsonlSink) and sink.path == tmp_path / "events.jsonl"
    assert link is None  # a file has no server to report to
    sink.close()
    sink.close()  # closing twice is harmless (shutdown paths may overlap)


def test_open_mqtt_sink_refuses_a_jsonl_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kind 'mqtt'"):
        open_mqtt_sink(device_config(tmp_path))


@pytest.mark.broker
def test_pipeline_delivers_events_and_evidence_over_mqtt(tmp_path: Path) -> None:
    with MosquittoBroker(tmp_path / "broker") as broker:
        collector = Collector(broker.port)
        try:
            assert collector.subscribed.wait(5)
            mqtt = sink_config(broker.port, tmp_path / "outbox.sqlite3")
            raw = {**device_config(tmp_path).model_dump(), "sink": mqtt.model_dump()}
            config = DeviceConfig.model_validate(raw)
            pipeline = from_config(
                config, detectors=[ScriptedDetector()], locator=FixedLocator(), source=ListSource(count=8)
            )
            assert type(pipeline.sink).__name__ == "OutboxSink" and pipeline.link is not None
            stats = pipeline.run()
            assert stats.events == 2
            assert collector.wait_for(lambda c: len(c.events) == 2), f"got {collector.events}"
            assert collector.wait_for(lambda c: len(c.evidence) >= 2)
        finally:
            collector.close()
    # The pictures that went out are the ones the box stored, byte for byte.
    for sha, payload in collector.evidence:
        assert pipeline.evidence.store.path_for(sha).read_bytes() == payload

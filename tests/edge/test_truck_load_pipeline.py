"""The load stage inside a real box run: real photos, the demo's detectors, the shipped classifier."""

from __future__ import annotations

from pathlib import Path

import yaml

from edge.config import load_config
from edge.pipeline import from_config
from streetwatch.events import TruckLoad, ViolationEvent
from tests.edge.test_edge_cli import REPO, TRUCK_PHOTOS, repeated_frames, write_config

MODEL = REPO / "models" / "truck-load" / "truck-load.onnx"


def test_sealed_trucks_raise_nothing_and_what_is_sent_carries_the_load(tmp_path: Path) -> None:
    repeated_frames(tmp_path / "frames", TRUCK_PHOTOS, times=4)
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["truck_load"] = {"model": str(MODEL)}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))

    pipeline = from_config(load_config(path))
    stats = pipeline.run()

    assert pipeline.load_stage is not None and pipeline.load_stage.open_tracks == 0
    # These photos hold box, canvas-top and tanker trucks: the classifier silences them.
    assert stats.load_silenced > 0
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    trucks = [e for e in map(ViolationEvent.from_json, lines) if e.violation_type.value == "unsealed_truck"]
    for event in trucks:  # whatever still leaves the box says what the classifier answered
        assert event.attributes is not None and event.attributes.load in (
            TruckLoad.uncovered,
            TruckLoad.unsure,
        )
        assert event.candidate is (event.attributes.load is TruckLoad.unsure)


def test_silenced_trucks_are_counted_in_the_boxs_telemetry(tmp_path: Path) -> None:
    # No truck event leaves the box for these sealed trucks: the telemetry's counts are what tells an
    # operator "trucks silenced" from "no trucks". A port where nothing listens: the report is built
    # on the box whether or not it can be sent.
    import socket

    from edge.mqtt import OutboxSink
    from streetwatch.messages import TruckLoadCounts

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    repeated_frames(tmp_path / "frames", TRUCK_PHOTOS[:2], times=4)
    sink_raw = {"kind": "mqtt", "host": "127.0.0.1", "port": port, "outbox": {"path": str(tmp_path / "o.db")}}
    config = load_config(write_config(tmp_path, sink=sink_raw))
    assert config.truck_load is not None  # the demo's config runs the load stage
    assert config.sink.kind == "mqtt"
    sink = OutboxSink.open(config.sink, device_id=config.device_id)
    report = sink.link.telemetry_message()
    assert report.truck_load is None  # no load stage yet: nothing claimed
    pipeline = from_config(config, sink=sink, link=sink.link)
    pipeline.run()  # closes the sink at the end
    assert pipeline.load_stage is not None
    counts = pipeline.load_stage.counts
    assert counts.silenced >= 1 and counts.raised == 0
    assert sink.link.telemetry.snapshot().truck_load == TruckLoadCounts(
        raised=counts.raised, unsure=counts.unsure, silenced=counts.silenced, too_small=counts.too_small
    )

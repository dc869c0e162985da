"""The load stage inside a real box run: real photos, the demo's detectors, the shipped classifier."""

from __future__ import annotations

from pathlib import Path

import yaml

from edge.config import load_config
from edge.pipeline import EdgePipeline
from streetwatch.events import TruckLoad, ViolationEvent
from tests.edge.test_edge_cli import REPO, TRUCK_PHOTOS, repeated_frames, write_config

MODEL = REPO / "models" / "truck-load" / "truck-load.onnx"


def test_sealed_trucks_raise_nothing_and_what_is_sent_carries_the_load(tmp_path: Path) -> None:
    repeated_frames(tmp_path / "frames", TRUCK_PHOTOS, times=4)
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["truck_load"] = {"model": str(MODEL)}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))

    pipeline = EdgePipeline(load_config(path))
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

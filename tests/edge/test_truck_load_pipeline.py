"""The load stage inside a real box run: real photos, the demo's detectors, the shipped classifier."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from edge.config import load_config
from edge.pipeline import from_config
from streetwatch.events import TruckLoad, ViolationEvent
from tests.edge.test_edge_cli import REPO, SAMPLES, TRUCK_PHOTOS, UNSURE_PHOTO, repeated_frames, write_config

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


def test_a_truck_confirmed_too_far_is_judged_on_its_nearest_view_as_it_comes_closer(tmp_path: Path) -> None:
    # A real tanker seen zoomed out (as if far), then zoomed in (as if near), around its centre. It
    # is confirmed while its box is under the gate (100 px here) and scores higher far than near,
    # so its best-scoring frame stays a far one: the load stage judges it on the nearest view its
    # track had instead, the held first event goes out then, and its evidence shows that view.
    image = cv2.imread(str(SAMPLES / UNSURE_PHOTO))
    assert image is not None
    h, w = image.shape[:2]
    cx, cy = (344 + 466) / 2, (126 + 427) / 2  # the tanker's box in the photo
    (tmp_path / "frames").mkdir()
    for n, scale in enumerate([0.8] * 4 + [1.2] * 4, start=1):
        zoom = np.float32([[scale, 0, cx * (1 - scale)], [0, scale, cy * (1 - scale)]])
        frame = cv2.warpAffine(image, zoom, (w, h), borderValue=(114, 114, 114))
        cv2.imwrite(str(tmp_path / "frames" / f"frame_{n:03d}.jpg"), frame)
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["truck_load"].update(min_side_px=100, min_score=0.9999)  # every judged truck goes out, unsure
    path.write_text(yaml.safe_dump(raw, sort_keys=False))

    pipeline = from_config(load_config(path))
    pipeline.run()

    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    new = [
        e
        for e in map(ViolationEvent.from_json, lines)
        if e.violation_type.value == "unsealed_truck" and e.lifecycle.value == "new"
    ]
    far = [e for e in new if min(e.box[2] - e.box[0], e.box[3] - e.box[1]) < 100]
    assert far, [e.box for e in new]  # confirmed while too far to judge, and still sent
    for event in far:
        assert event.attributes is not None and event.attributes.load is TruckLoad.unsure
        assert event.evidence is not None and event.evidence.box is not None
        x1, y1, x2, y2 = event.evidence.box
        assert min(x2 - x1, y2 - y1) >= 100  # the near view the stage judged, not the far best score
        assert event.evidence.captured_at >= min(e.observed_at for e in new)
        sha = event.evidence.frame_sha256
        assert (tmp_path / "evidence" / sha[:2] / f"{sha}.jpg").is_file()
    assert pipeline.load_stage is not None and pipeline.load_stage.open_tracks == 0

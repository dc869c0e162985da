"""``streetwatch edge run`` end to end on real photos with YOLOX-nano, and ``edge check-config``."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from edge.config import DeviceConfig, load_config
from streetwatch.cli import main
from streetwatch.events import TruckLoad, ViolationEvent

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "datasets" / "samples" / "images"
DEMO = REPO / "deploy" / "edge.demo.yaml"
EXAMPLE = REPO / "deploy" / "edge.example.yaml"
#: Sample photos with labelled trucks, and photos with only cars labelled (the source's labels).
TRUCK_PHOTOS = ["vehicles_vnv_28_jpg.jpg", "vehicles_vnv_1333_jpg.jpg", "vehicles_vnv_138_jpg.jpg"]
CAR_PHOTOS = ["vehicles_vnv_1292_jpg.jpg", "vehicles_vnv_1249_jpg.jpg", "vehicles_vnv_1262_jpg.jpg"]
#: A blurred far vehicle (24 px wide) the load model is unsure of, when it is asked.
UNSURE_PHOTO = "vehicles_vnv_765_png.jpg"


def write_config(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load(DEMO.read_text())
    raw["source"]["uri"] = str(tmp_path / "frames")
    raw["location"]["path"] = str(REPO / "datasets" / "samples" / "track.gpx")
    for detector in raw["detectors"]:  # the copy lives elsewhere: make the demo's model paths absolute
        detector["model"] = str((DEMO.parent / detector["model"]).resolve())
    if raw.get("truck_load"):
        raw["truck_load"]["model"] = str((DEMO.parent / raw["truck_load"]["model"]).resolve())
    raw["evidence"]["directory"] = str(tmp_path / "evidence")
    raw["sink"]["path"] = str(tmp_path / "events.jsonl")
    raw.update(changes)
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def repeated_frames(folder: Path, photos: list[str], times: int) -> None:
    """Each real photo copied ``times`` times in a row: a camera that saw each scene for a few frames."""
    folder.mkdir()
    n = 0
    for photo in photos:
        for _ in range(times):
            n += 1
            shutil.copyfile(SAMPLES / photo, folder / f"frame_{n:03d}.jpg")


def test_edge_run_on_real_photos_silences_sealed_trucks_and_sends_unsure_ones_as_candidates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repeated_frames(tmp_path / "frames", [*TRUCK_PHOTOS, UNSURE_PHOTO], times=4)
    config = write_config(tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["truck_load"]["min_side_px"] = 0  # every truck judged, the far one too (the demo skips it)
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["edge", "run", "--config", str(config)]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    counts = re.search(r"trucks: (\d+) raised, (\d+) unsure, (\d+) silenced by the load stage", last)
    assert counts, f"the run's summary does not say what the load stage did: {last}"
    raised, unsure, silenced = map(int, counts.groups())
    # The three truck photos hold box, canvas-top and tanker trucks: nothing an inspector would act on.
    assert raised == 0 and silenced >= 6, last
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    events = [ViolationEvent.from_json(line) for line in lines]
    new = [e for e in events if e.lifecycle.value == "new"]
    # What still leaves the box is the trucks the load model is unsure of, each a candidate saying so.
    assert unsure >= 1 and len(new) == unsure, last
    for event in new:
        assert event.violation_type.value == "unsealed_truck" and event.candidate
        assert event.attributes is not None and event.attributes.load is TruckLoad.unsure
        assert (event.attributes.load_model or "").startswith("truck-load")
    assert {e.detector_class for e in new} == {"truck"}
    assert {e.model.name for e in new} == {"streetwatch-det"}  # fused vehicles are reported as detector 1's
    # Every confirmed track also ends (the run's end flushes open ones), with the same track_id.
    ends = {e.track_id for e in events if e.lifecycle.value == "end"}
    assert {e.track_id for e in new} <= ends
    first = new[0]
    assert first.device_id == "demo-van-01" and (first.frame_width, first.frame_height) == (640, 640)
    assert first.position is not None and first.position.source == "gpx"
    assert first.evidence is not None
    sha = first.evidence.frame_sha256
    assert (tmp_path / "evidence" / sha[:2] / f"{sha}.jpg").stat().st_size == first.evidence.frame_bytes


def test_edge_run_with_the_demo_config_sends_nothing_for_a_truck_too_far_to_judge(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same far vehicle with the demo's min_side_px: nobody could judge its load from 24 px, so
    # it is counted, not handed to a dispatcher as a candidate. (Alone, this photo's tanker is
    # confirmed too, and the model is unsure of it: that one still goes out.)
    repeated_frames(tmp_path / "frames", [UNSURE_PHOTO], times=4)
    assert main(["edge", "run", "--config", str(write_config(tmp_path))]) == 0
    last = capsys.readouterr().err.strip().splitlines()[-1]
    far = re.search(r"trucks: 0 raised, (\d+) unsure, \d+ silenced by the load stage, (\d+) too far", last)
    assert far and int(far.group(2)) >= 1, last
    events = map(ViolationEvent.from_json, (tmp_path / "events.jsonl").read_bytes().splitlines())
    sent = [e for e in events if e.violation_type.value == "unsealed_truck" and e.lifecycle.value == "new"]
    assert len(sent) == int(far.group(1))
    assert all(min(e.box[2] - e.box[0], e.box[3] - e.box[1]) >= 28 for e in sent), [e.box for e in sent]


def test_edge_run_raises_no_truck_on_photos_of_cars(tmp_path: Path) -> None:
    # YOLOX alone called cars here trucks; fused with streetwatch-det's vehicles, the cars win.
    repeated_frames(tmp_path / "frames", CAR_PHOTOS, times=4)
    assert main(["edge", "run", "--config", str(write_config(tmp_path))]) == 0
    events = [
        ViolationEvent.from_json(line) for line in (tmp_path / "events.jsonl").read_bytes().splitlines()
    ]
    assert [e for e in events if e.violation_type.value == "unsealed_truck"] == []


def test_edge_run_max_frames(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repeated_frames(tmp_path / "frames", TRUCK_PHOTOS[:1], times=6)
    assert main(["edge", "run", "--config", str(write_config(tmp_path)), "--max-frames", "2"]) == 0
    assert "2 frames at" in capsys.readouterr().err


@pytest.mark.broker
def test_edge_run_without_a_broker_says_what_waits_in_the_outbox(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Delivery is what this tests: the load stage is off, so the photos' sealed trucks make events.
    repeated_frames(tmp_path / "frames", TRUCK_PHOTOS, times=4)
    outbox = tmp_path / "outbox.db"
    sink = {"kind": "mqtt", "host": "127.0.0.1", "port": port, "outbox": {"path": str(outbox)}}
    assert main(["edge", "run", "--config", str(write_config(tmp_path, sink=sink, truck_load=None))]) == 0
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert f"wait in the outbox {outbox} for the server's acknowledgement" in last, last
    assert "acknowledged every event" not in last and "last will" not in err

    # the same run with a real broker and a server that stores and acknowledges: the line says so
    from tests.edge.mqtt.support import Collector
    from tests.support.mosquitto import MosquittoBroker

    with MosquittoBroker(tmp_path / "broker") as broker:
        server = Collector(broker.port)
        try:
            assert server.subscribed.wait(5)
            sink = {"kind": "mqtt", "host": "127.0.0.1", "port": broker.port, "outbox": {"path": str(outbox)}}
            config = write_config(tmp_path, sink=sink, truck_load=None)
            assert main(["edge", "run", "--config", str(config)]) == 0
        finally:
            server.close()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.endswith("the server acknowledged every event as stored"), last


def test_check_config_ok_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge", "check-config", str(DEMO)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {DEMO}")
    assert "yolox_nano_coco 1.0, 80 classes, input 416x416" in out
    assert "truck from detector 1 -> unsealed_truck (candidate)" in out
    assert "truck-load.onnx on each confirmed unsealed_truck: an open load raises it" in out  # the load stage
    assert "a truck under 28 px on its shorter side waits for a nearer view (none: nothing sent)" in out
    # The shipped model reports, from its own ONNX metadata, the version the registry calls current.
    registry = json.loads((REPO / "models" / "registry.json").read_text())
    current = registry["current"]["streetwatch-det"]
    entry = next(m for m in registry["models"] if m["name"] == "streetwatch-det" and m["version"] == current)
    size = entry["metrics"]["imgsz"]
    assert f"streetwatch-det {current}, 8 classes, input {size}x{size}" in out


def test_check_config_says_what_the_camera_view_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "frames").mkdir()
    assert main(["edge", "check-config", str(write_config(tmp_path, camera={"hfov_deg": 95}))]) == 0
    out = capsys.readouterr().out
    assert "camera   looks ahead, field of view 95°: objects placed on their side of the route" in out
    assert "holds 'new' up to 10 s for the object's place" in out
    assert main(["edge", "check-config", str(EXAMPLE)]) == 0  # a pole camera: nothing to place
    assert "field of view 100°: unused: a fixed camera places nothing" in capsys.readouterr().out
    path = write_config(tmp_path, camera={"hfov_deg": 190})
    assert main(["edge", "check-config", str(path)]) == 1
    assert "camera.hfov_deg: Input should be less than 180" in capsys.readouterr().err


def test_check_config_names_a_typo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "frames").mkdir()
    path = write_config(tmp_path, tracker={"new_track_tresh": 0.4})
    assert main(["edge", "check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "NOT OK" in err and "tracker.new_track_tresh: Extra inputs are not permitted" in err


def test_check_config_names_fused_and_required_classes_no_detector_keeps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "frames").mkdir()
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["detectors"][0]["keep_classes"].remove("person")
    raw["fusion"]["classes"]["lorry"] = ["lorry"]
    path.write_text(yaml.safe_dump(raw))
    assert main(["edge", "check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "rules.street_vending.requires[0]: no detector keeps any of ['person']" in err
    assert "fusion.classes.lorry: none of ['lorry'] is a class of detector(s) [0, 1]" in err


def test_check_config_reports_a_missing_model_and_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["detectors"][0]["model"] = "models/streetwatch-det/missing.onnx"
    path.write_text(yaml.safe_dump(raw))
    assert main(["edge", "check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "2 problem(s)" in err
    assert f"detectors[0].model: {tmp_path}/models/streetwatch-det/missing.onnx does not exist" in err
    assert f"source.uri: image folder {tmp_path}/frames does not exist" in err


def test_check_config_reports_a_class_the_model_does_not_have(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "frames").mkdir()
    typo = {"detector_class": "trukc", "violation_type": "unsealed_truck", "candidate": True}
    path = write_config(tmp_path, class_map=[typo])
    assert main(["edge", "check-config", str(path)]) == 1
    assert "class_map[0].detector_class: 'trukc' is not a class of yolox_nano_coco" in capsys.readouterr().err


def test_check_config_reports_a_mapped_class_that_keep_classes_drops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "frames").mkdir()
    raw = yaml.safe_load(DEMO.read_text())
    detectors = raw["detectors"]
    for detector in detectors:
        detector["model"] = str((DEMO.parent / detector["model"]).resolve())
    detectors[1]["keep_classes"] = ["garbage", "signboard"]  # overflow is still mapped
    path = write_config(tmp_path, detectors=detectors)
    assert main(["edge", "check-config", str(path)]) == 1
    assert "'overflow' can never fire: the keep_classes of detector 1 leave it out" in capsys.readouterr().err


def test_check_config_on_a_corrupt_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "frames").mkdir()
    (tmp_path / "broken.onnx").write_bytes(b"not a model at all")
    path = write_config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["detectors"][0]["model"] = str(tmp_path / "broken.onnx")
    path.write_text(yaml.safe_dump(raw))
    assert main(["edge", "check-config", str(path)]) == 1
    assert "detectors[0].model:" in capsys.readouterr().err


def test_the_example_config_is_valid_and_every_field_is_annotated() -> None:
    config = load_config(EXAMPLE)
    assert isinstance(config, DeviceConfig)
    text = EXAMPLE.read_text()
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    keys = {line.split(":")[0].strip().lstrip("- ") for line in settings}
    missing = sorted(f for f in _field_names(DeviceConfig) if f not in keys)
    assert missing == [], f"fields not shown in {EXAMPLE.name}: {missing}"
    explained: set[str] = set()
    for line in text.splitlines():
        setting, _, comment = line.partition("#")
        key = setting.split(":")[0].strip().lstrip("- ")
        header = setting.rstrip().endswith(":") or setting.strip().startswith("- {")
        if not key or ":" not in setting or header:
            continue  # comment lines, section headers, and one-line mappings of keys explained above
        if comment:
            explained.add(key)
        else:
            assert key in explained, f"setting without a comment in {EXAMPLE.name}: {line!r}"


def _field_names(model: type[BaseModel]) -> set[str]:
    names: set[str] = set()
    for name, info in model.model_fields.items():
        if name == "sink":
            names |= {"sink", "kind", "path"}
            continue
        if name == "updates":  # off in the example (it needs the mqtt sink); its fields are shown commented
            names.add("updates")
            continue
        names.add(name)
        for arg in _types(info.annotation):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                names |= _field_names(arg)
    return names


def _types(annotation: object) -> list[object]:
    args = getattr(annotation, "__args__", ())
    found = [annotation]
    for a in args:
        found += _types(a)
    return found


def test_sigterm_stops_edge_run_cleanly(tmp_path: Path) -> None:
    repeated_frames(tmp_path / "frames", TRUCK_PHOTOS[:1], times=4)
    config = write_config(tmp_path, truck_load=None)  # the load stage would silence these sealed trucks
    raw = yaml.safe_load(config.read_text())
    raw["source"]["loop"] = True  # never ends by itself
    raw["source"]["fps_limit"] = 10
    config.write_text(yaml.safe_dump(raw))
    events_file = tmp_path / "events.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "streetwatch.cli", "edge", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (events_file.exists() and b'"new"' in events_file.read_bytes()):
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "no event within 60 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err.decode()
    events = [ViolationEvent.from_json(line) for line in events_file.read_bytes().splitlines()]
    lifecycles = [e.lifecycle.value for e in events]
    assert lifecycles[0] == "new" and lifecycles[-1] == "end"
    # Every violation the run opened was ended on the way out (the photo holds two trucks).
    opened = {e.track_id for e in events if e.lifecycle.value == "new"}
    assert opened == {e.track_id for e in events if e.lifecycle.value == "end"}


def test_check_config_reports_missing_mqtt_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "frames").mkdir()
    sink = {"kind": "mqtt", "host": "127.0.0.1", "password_file": str(tmp_path / "mqtt.pass"),
            "tls": {"ca_file": str(tmp_path / "ca.pem")}}  # fmt: skip
    path = write_config(tmp_path, sink=sink)
    assert main(["edge", "check-config", "--no-models", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"sink.password_file: {tmp_path}/mqtt.pass does not exist" in err
    assert f"sink.tls.ca_file: {tmp_path}/ca.pem does not exist" in err

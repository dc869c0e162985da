"""The main job end to end: `streetwatch demo --once` with a real Mosquitto, the server pieces
(migrations, ingest worker, HTTP API) and a real edge process replaying the shipped samples."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
SUMMARY = re.compile(r"replay ingested: events stored: (\d+) from (\d+) device\(s\); cases: (\d+)")


def _run_in_own_group(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run the demo in its own process group, so a hang cannot leave its broker or edge box behind."""
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this test started, and nothing else
        out, err = proc.communicate()
        pytest.fail(f"streetwatch demo did not finish within {timeout} s:\n{(out + err)[-3000:]}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.broker
def test_demo_once_turns_the_sample_replay_into_cases(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    command = [sys.executable, "-m", "streetwatch.cli", "demo", "--once", "--port", "0"]
    # The demo gives up on its own (and cleans up) well before the hard limit below.
    command += ["--workdir", str(workdir), "--timeout", "240"]
    result = _run_in_own_group(command, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    match = SUMMARY.search(output)
    assert match, output[-3000:]
    events, devices, cases = (int(g) for g in match.groups())
    assert cases >= 1 and events >= cases and devices == 1
    assert "/api/v1/cases" in output and "admin token" in output

    # The edge really published over MQTT to the demo's broker...
    edge = yaml.safe_load((workdir / "edge.yaml").read_text())
    assert edge["sink"]["kind"] == "mqtt"
    assert "pipeline stopped: 135 frames" in (workdir / "edge.log").read_text()
    # ...and what the summary reported through the API is what the database holds.
    with sqlite3.connect(workdir / "streetwatch.db") as db:
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == events
        assert db.execute("SELECT count(*) FROM cases").fetchone()[0] == cases
        # Every event is in a case but those of the registered sign (below), which open none.
        attached = db.execute("SELECT count(*) FROM sign_sightings WHERE outcome = 'attached'").fetchone()[0]
        assert db.execute("SELECT count(*) FROM events WHERE case_id IS NULL").fetchone()[0] == attached
        stored_evidence = db.execute("SELECT count(*) FROM evidence").fetchone()[0]
        truck_events = db.execute(
            "SELECT candidate, attributes FROM events "
            "WHERE violation_type = 'unsealed_truck' AND lifecycle = 'new'"
        ).fetchall()
        # Clean frames (training data for reviewed cases) travelled with the annotated ones.
        clean_stored = db.execute(
            "SELECT count(*) FROM events JOIN evidence ON evidence.sha256 = events.clean_sha256"
        ).fetchone()[0]
        # The made-up permit (demo.permits) was imported and its sign, seen on the replay, opened no case.
        permitted = db.execute(
            "SELECT signs.permit_id, signs.sighting_count, count(sign_sightings.id) FROM signs "
            "JOIN sign_sightings ON sign_sightings.sign_id = signs.id "
            "AND sign_sightings.outcome = 'attached' AND sign_sightings.case_id IS NULL GROUP BY signs.id"
        ).fetchall()
        # ...and its photo is in the evidence store, where the Signs page shows it.
        permit_photos = db.execute(
            "SELECT count(*) FROM signs JOIN evidence ON evidence.sha256 = signs.crop_sha256"
        ).fetchone()[0]
        # The fleet page shows the box as it last ran: its models and its figures, not blanked by
        # anything that delivered its outbox after it (the box drains it itself before exiting).
        models, health = db.execute("SELECT models, health FROM devices").fetchone()
        placed = db.execute(
            "SELECT events.raw, cases.lat, cases.lon, cases.title FROM events "
            "JOIN cases ON cases.id = events.case_id "
            "WHERE events.raw LIKE '%\"object_position\": {%' OR events.raw LIKE '%\"object_position\":{%'"
        ).fetchall()
    _the_approached_sign_is_placed_on_its_side(placed)
    assert {m["name"] for m in json.loads(models)} == {"yolox_nano_coco", "streetwatch-det", "truck-load"}
    # (frames count per report and may be 0 in the last one; the load stage's counts are totals)
    assert json.loads(health)["truck_load"] is not None
    assert permitted == [("DEMO-2026-0165", 2, 2)]  # its new and end events, both attached
    assert permit_photos == 1
    signs = re.search(r"signs: (\d+) of (\d+) seen were registered \(no case\)", output)
    assert signs and int(signs.group(1)) == 1 and int(signs.group(2)) > 1, output[-3000:]
    assert stored_evidence >= 1
    assert clean_stored >= 1
    # The truck load stage runs: sealed trucks send nothing, but the box says how many it silenced,
    # and every truck that reached the server carries the load answer it was sent for.
    trucks = re.search(
        r"trucks on the box: (\d+) raised, (\d+) unsure, (\d+) silenced by the load stage, "
        r"(\d+) too far to judge",
        output,
    )
    assert trucks, output[-3000:]
    raised, unsure, silenced, too_far = (int(g) for g in trucks.groups())
    # The demo's replay holds far trucks at the top of traffic views: judged by nobody, sent nowhere.
    assert silenced >= 1 and too_far >= 1
    assert len(truck_events) == raised + unsure
    for candidate, attributes in truck_events:
        assert json.loads(attributes)["load"] == ("unsure" if candidate else "uncovered")


def _the_approached_sign_is_placed_on_its_side(rows: list[tuple[str, float, float, str]]) -> None:
    """The replay ends with a shop sign approached 5 m right of the route (``demo.approach``): the box
    places it there, far from the van's fixes, and its case stands at the sign, not at the van. The
    demo's server has a no-sign zone along that side of the street: the case says the sign is in it."""
    from demo.approach import plan
    from edge.config import load_config
    from edge.location.geo import EARTH_RADIUS_M, distance_m

    config = load_config(REPO / "deploy" / "edge.demo.yaml")
    assert config.source.start_time is not None and config.location.path is not None
    sign = plan(Path(config.location.path), config.source.start_time, config.source.image_interval_s)
    assert rows, "no event of the demo carries the object's place"
    for raw, case_lat, case_lon, title in rows:
        assert title.startswith("Signboard in no-sign zone 'Demo heritage street, east side' near "), title
        event = json.loads(raw)
        assert event["violation_type"] == "illegal_signboard"
        place, camera = event["object_position"], event["position"]
        off = distance_m(place["lat"], place["lon"], sign.sign_lat, sign.sign_lon)
        assert off <= min(place["accuracy_m"], 10.0), (off, place)
        assert distance_m(camera["lat"], camera["lon"], sign.sign_lat, sign.sign_lon) > 10.0
        assert distance_m(case_lat, case_lon, sign.sign_lat, sign.sign_lon) <= 10.0
    # The track's last word is the nearest (measured 2.4 m off), and on the right of the road.
    last = max((json.loads(row[0]) for row in rows), key=lambda e: e["observed_at"])
    place, camera = last["object_position"], last["position"]
    assert distance_m(place["lat"], place["lon"], sign.sign_lat, sign.sign_lon) <= 4.0
    east = math.radians(place["lon"] - camera["lon"]) * EARTH_RADIUS_M * math.cos(math.radians(camera["lat"]))
    north = math.radians(place["lat"] - camera["lat"]) * EARTH_RADIUS_M
    heading = math.radians(camera["heading_deg"])
    assert east * math.cos(heading) - north * math.sin(heading) > 3.0  # metres right of the van's travel


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    result = subprocess.run(
        [sys.executable, "-m", "streetwatch.cli", "demo", "--once", "--workdir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "not made by the demo" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_live_replay_ends_now_and_keeps_gps_aligned_with_frames() -> None:
    from datetime import datetime, timedelta, timezone

    from demo.cli import live_replay, replay_span_s
    from edge.config import load_config

    config = load_config(REPO / "deploy" / "edge.demo.yaml")
    assert config.source.start_time is not None
    now = datetime(2030, 6, 1, 12, 0, tzinfo=timezone.utc)
    source, location = live_replay(config.source, config.location, now)
    span = replay_span_s(config.source)
    frames = len(list((REPO / "datasets/samples/replay").glob("*.jpg")))
    assert span == frames * config.source.image_interval_s
    assert source.start_time == now - timedelta(seconds=span)
    # A frame at recorded time t now carries time t + shift; the track moves by the same shift.
    shift = (source.start_time - config.source.start_time).total_seconds()
    assert location.time_offset_s == config.location.time_offset_s + shift


def test_events_the_box_could_not_deliver_are_named_not_lost_silently(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from demo.cli import Demo

    demo = Demo(tmp_path, host="127.0.0.1", port=0)
    log = tmp_path / "edge.log"
    log.write_text("135 frames at 20 fps; the server acknowledged every event as stored\n")
    demo._report_leftovers()
    assert capsys.readouterr().err == ""
    log.write_text("135 frames; 3 events and 5 images wait in the outbox /x/o.sqlite3 until acknowledged\n")
    demo._report_leftovers()
    assert "did not drain in time: 3 events and 5 images wait in the outbox" in capsys.readouterr().err

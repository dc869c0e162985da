"""Telemetry parts that need no broker: track thinning, thermal zones, backoff."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from edge.mqtt.backoff import Backoff
from edge.mqtt.telemetry import TelemetryRecorder
from edge.mqtt.thermal import read_temperatures
from streetwatch.events import Position
from streetwatch.geo import distance_m

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc)


def fix(lat: float, lon: float) -> Position:
    return Position(lat=lat, lon=lon, heading_deg=90.0, source="nmea")


def test_distance_is_about_111_km_per_degree_of_latitude() -> None:
    assert abs(distance_m(31.0, 121.0, 32.0, 121.0) - 111_195) < 100


def test_track_is_thinned_by_distance_and_time_and_bounded() -> None:
    clock = [0.0]
    recorder = TelemetryRecorder(min_distance_m=25, min_interval_s=30, max_points=5, clock=lambda: clock[0])
    recorder.note_position(fix(31.0, 121.0), T0)
    recorder.note_position(fix(31.0001, 121.0), T0 + timedelta(seconds=1))  # 11 m later: skipped
    recorder.note_position(fix(31.0003, 121.0), T0 + timedelta(seconds=2))  # 33 m: kept
    recorder.note_position(fix(31.0003, 121.0), T0 + timedelta(seconds=40))  # parked, 38 s: kept
    for _ in range(30):
        recorder.note_frame()
    clock[0] = 10.0
    snap = recorder.snapshot()
    assert [p.at for p in snap.coverage] == [T0, T0 + timedelta(seconds=2), T0 + timedelta(seconds=40)]
    assert (snap.frames, snap.period_s, snap.coverage_overflow) == (30, 10.0, 0)
    assert recorder.snapshot().coverage == []  # a new period starts empty

    for i in range(8):
        recorder.note_position(fix(31.0 + i * 0.001, 121.0), T0 + timedelta(minutes=i + 1))
    snap = recorder.snapshot()
    assert len(snap.coverage) == 5 and snap.coverage_overflow == 3
    assert snap.coverage[-1].lat == 31.007  # the newest points are kept


def test_thermal_zones_are_read_and_unreadable_ones_skipped(tmp_path: Path) -> None:
    def zone(n: int, kind: str, temp: str) -> None:
        d = tmp_path / f"thermal_zone{n}"
        d.mkdir()
        (d / "type").write_text(kind + "\n")
        (d / "temp").write_text(temp + "\n")

    zone(0, "CPU-therm", "41500")
    zone(1, "GPU-therm", "39000")
    zone(2, "cpu-thermal", "garbage")
    zone(3, "AO-therm", "-273000")
    zone(4, "x86_pkg_temp", "45000")
    temps = read_temperatures(tmp_path)
    assert (temps.cpu_c, temps.gpu_c) == (45.0, 39.0)
    assert read_temperatures(tmp_path / "missing") == type(temps)(cpu_c=None, gpu_c=None)


def test_backoff_grows_with_jitter_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(1.0, 8.0, rng=random.Random(1))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(1.0 <= d <= 8.0 for d in delays)
    assert max(delays[:1]) <= 1.0 and max(delays[4:]) > 2.0
    assert len(set(delays[4:])) == 6  # jitter: no two boxes (or tries) wait the same
    backoff.reset()
    assert backoff.next_delay() == 1.0

"""The zone file is read again when it changes; a change that cannot be used keeps the zones before."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from server.signs.zone_file import ZoneFile
from server.signs.zones import ZoneFileError
from tests.server.signs.zone_files import collection, write_zones, zone_feature

SQUARE = [(21.0, 105.0), (21.0, 105.01), (21.01, 105.01), (21.01, 105.0), (21.0, 105.0)]
FAR_SQUARE = [(22.0, 106.0), (22.0, 106.01), (22.01, 106.01), (22.01, 106.0), (22.0, 106.0)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def names(source: ZoneFile) -> list[str]:
    return [zone.name for zone in source.current()]


def rewrite(path: Path, text: str) -> None:
    """Write and move the modification time on, as an editor saving a second later would."""
    stamp = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(stamp + 1_000_000_000, stamp + 1_000_000_000))


def test_a_changed_file_is_read_on_the_first_look_after_the_interval(tmp_path: Path) -> None:
    clock = Clock()
    path = write_zones(tmp_path, zone_feature("Old Quarter", "", SQUARE))
    source = ZoneFile(path, check_every_s=2.0, clock=clock)
    assert names(source) == ["Old Quarter"]
    rewrite(path, collection(zone_feature("Old Quarter", "", SQUARE), zone_feature("Lake", "", FAR_SQUARE)))
    clock.now += 1.0
    assert names(source) == ["Old Quarter"]  # not looked at yet: one stat per interval
    clock.now += 1.5
    assert names(source) == ["Old Quarter", "Lake"]
    assert source.problem is None


def test_a_broken_or_missing_file_keeps_the_zones_before_and_says_why_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    path = write_zones(tmp_path, zone_feature("Old Quarter", "no signs", SQUARE))
    source = ZoneFile(path, check_every_s=0.0, clock=clock)
    read_at = source.read_at
    caplog.set_level(logging.INFO, logger="server.signs.zone_file")

    rewrite(path, '{"type": "FeatureCollection", "features": [')  # an editor's half-written save
    for _ in range(3):
        assert names(source) == ["Old Quarter"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per change, not once per sighting
    assert source.problem is not None and "is not JSON" in source.problem
    assert "the 1 zone(s) read at " in source.problem and source.problem.endswith("stay in force")
    assert source.read_at == read_at

    path.unlink()
    assert names(source) == ["Old Quarter"]
    assert source.problem is not None and "cannot read the no-sign zone file" in source.problem

    rewrite(path, collection(zone_feature("Lake", "", FAR_SQUARE)))
    assert names(source) == ["Lake"]
    assert source.problem is None and source.read_at >= read_at


def test_the_first_read_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "zones.geojson"
    path.write_text("[]")
    with pytest.raises(ZoneFileError, match="must be a GeoJSON FeatureCollection"):
        ZoneFile(path)

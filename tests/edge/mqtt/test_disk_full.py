"""The box's disk really fills up (a small tmpfs): new events are stored by dropping older images first.

Mounting needs root; elsewhere the test skips (``test_outbox.py`` covers the same policy
with SQLite's own page limit).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.mqtt import OutboxSink
from tests.edge.mqtt.support import make_event, make_evidence, sink_config

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root"),
    pytest.mark.skipif(shutil.which("mount") is None, reason="needs the mount command"),
]

DEVICE = "van-91"
MIB = 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)]
    mounted = subprocess.run(command, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> int:
    """Take every free byte, as another program filling the disk would; return how many."""
    taken = 0
    chunk = b"\0" * (64 * 1024)
    with (disk / "filler").open("ab") as filler:
        try:
            while True:
                filler.write(chunk)
                filler.flush()
                taken += len(chunk)
        except OSError:
            pass
    return taken


def test_a_full_disk_drops_older_images_and_keeps_every_new_event(small_disk: Path) -> None:
    path = small_disk / "outbox.sqlite3"
    config = sink_config(1, path, outbox={"reserve_bytes": 4 * MIB})  # no broker: everything stays on disk
    sink = OutboxSink.open(config, device_id=DEVICE)
    try:
        for i in range(35):  # older events whose images wait for the server
            evidence = make_evidence(i, size=150_000)
            sink.emit(make_event(DEVICE, i, evidence.ref), evidence)
        assert sink.outbox.depth().evidence == 70
        assert fill(small_disk) > 0
        with pytest.raises(OSError):
            (small_disk / "probe").write_bytes(b"x" * 8192)  # the disk really is full

        for i in range(35, 135):  # 100 new events, each with its images
            evidence = make_evidence(i, size=10_000)
            sink.emit(make_event(DEVICE, i, evidence.ref), evidence)
        depth = sink.outbox.depth()
        dropped = sink.outbox.dropped()
        assert depth.events == 135, f"events were lost: {dropped}"
        assert dropped.get("evidence_disk_full", 0) > 0
        assert "storage_error" not in dropped and "event_disk_full" not in dropped
        report = sink.link.telemetry_message()
        assert report.dropped["evidence_disk_full"] == dropped["evidence_disk_full"]
    finally:
        sink.close(drain_timeout_s=0)

    # A restart while the disk is still full: the outbox opens, and nothing it knew is forgotten.
    again = OutboxSink.open(config, device_id=DEVICE)
    try:
        assert again.outbox.depth().events == 135
        assert again.outbox.dropped() == dropped
    finally:
        again.close(drain_timeout_s=0)

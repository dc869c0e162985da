"""The edge process is SIGKILLed mid-stream and restarted: every committed event still arrives."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from edge.outbox import Outbox, OutboxLimits
from tests.edge.mqtt.support import Collector, event_id
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.broker

REPO = Path(__file__).resolve().parents[3]
DEVICE = "van-09"


def feeder(port: int, outbox: Path, start: int, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.edge.mqtt.feeder",
            "--port",
            str(port),
            "--outbox",
            str(outbox),
            "--device",
            DEVICE,
            "--start",
            str(start),
            "--count",
            str(count),
            "--delay",
            "0.004",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def test_sigkill_mid_stream_then_restart_delivers_every_event(
    broker: MosquittoBroker, collector: Collector, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    total = 400
    first = feeder(broker.port, outbox, 0, total)
    assert first.stdout is not None
    last = -1
    for line in first.stdout:  # kill it in full flight, between two commits
        if line.startswith("emitted "):
            last = int(line.split()[1])
            if last == 100:
                broker.stop()  # so that some committed events exist only on the box's disk
            if last >= 150:
                break
    first.send_signal(signal.SIGKILL)
    first.wait(5)
    assert first.returncode == -signal.SIGKILL
    waiting = Outbox(outbox, OutboxLimits(max_bytes=1 << 30, max_age_s=3600))
    assert waiting.depth().events >= 40, "the killed process should have left events in its outbox"
    waiting.close()
    broker.start()

    # The restarted process replays what the outbox holds, then feeds the rest.
    second = feeder(broker.port, outbox, last + 1, total)
    out, _ = second.communicate(timeout=40)
    assert second.returncode == 0, out[-500:]
    assert "drained" in out

    expected = {str(event_id(DEVICE, i)) for i in range(total)}
    assert collector.wait_for(lambda c: expected <= set(c.events), 10)
    assert set(collector.events) == expected  # repeats, if any, are only repeated event_ids

"""``streetwatch server workers``: which ingest workers are up, from their heartbeats."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy.orm import Session, sessionmaker

from server.ingest.heartbeat import beat
from streetwatch.cli import main
from streetwatch.events import utcnow


def test_workers_lists_who_is_down_and_forget_retires_one(
    migrated_url: str, sessions: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"database_url": migrated_url, "evidence_dir": str(tmp_path / "ev")}))
    command = ["server", "workers", "--config", str(config)]
    assert main(command) == 1
    assert "no ingest worker has reported yet" in capsys.readouterr().out

    now = utcnow()
    beat(sessions, "ingest-1", now - timedelta(hours=2), now - timedelta(seconds=4), connected=True)
    assert main(command) == 0
    assert re.fullmatch(r"ingest-1: up, connected, last seen \d+ s ago\n", capsys.readouterr().out)

    beat(sessions, "ingest-2", now - timedelta(hours=2), now - timedelta(minutes=5), connected=True)
    beat(sessions, "ingest-3", now - timedelta(hours=2), now - timedelta(seconds=2), connected=False)
    assert main(command) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ingest-1: up")
    assert lines[1].startswith("ingest-2: DOWN (silent), last seen 5 min ago: its share of messages queues")
    assert re.match(r"ingest-3: DOWN \(not connected to the broker\), last seen \d+ s ago: ", lines[2])

    assert main([*command, "--forget", "ingest-2"]) == 0
    assert main([*command, "--forget", "ingest-3"]) == 0
    capsys.readouterr()
    assert main(command) == 0
    assert main([*command, "--forget", "ingest-9"]) == 1
    assert "no ingest worker 'ingest-9' has ever reported" in capsys.readouterr().err

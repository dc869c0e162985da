"""A fleet server for the rollout end-to-end tests: SQLite, HTTP (its port is the download URL)
and an ingest worker on a real broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from server.app import create_app
from server.db.migrate import upgrade
from server.ingest.worker import IngestWorker
from server.settings import load_settings
from tests.server.api.live_server import serve


def write_fleet_config(
    tmp_path: Path, broker_port: int, registry: Path, public_key: Path
) -> tuple[str, Path]:
    """A migrated SQLite database and a server config rolling out ``registry``'s signed models;
    returns the database URL and the config's path."""
    database = f"sqlite:///{tmp_path / 'server.db'}"
    upgrade(database)
    raw = {
        "database_url": database,
        "evidence_dir": str(tmp_path / "evidence"),
        "mqtt": {"port": broker_port},
        "limits": {"batch_wait_s": 0.05},
        "fleet": {"model_registry": str(registry), "public_key": str(public_key), "advance_every_s": 0.5,
                  "reply_timeout_s": 120},
    }  # fmt: skip
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump(raw))
    return database, config


@contextmanager
def fleet_server(config: Path, client_id: str) -> Iterator[IngestWorker]:
    """Serve HTTP, point the config's download URL at it, run an ingest worker; stop both on exit."""
    with serve(create_app(load_settings(config))) as port:
        raw: dict[str, Any] = yaml.safe_load(config.read_text())
        raw["fleet"]["download_base_url"] = f"http://127.0.0.1:{port}/"
        config.write_text(yaml.safe_dump(raw))
        worker = IngestWorker(load_settings(config), client_id=client_id)
        worker.start()
        try:
            assert worker.wait_subscribed(10)
            yield worker
        finally:
            worker.stop()

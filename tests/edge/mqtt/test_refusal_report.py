"""A box the broker refuses tells the server over HTTP, and the fleet page shows why it is silent.

Everything real: Mosquitto with the shipped ACL and per-device passwords refusing the box's login,
the server's HTTP API (uvicorn, SQLite) taking the box's report with its own token, and the box's
outbox sink. Once the operator fixes the broker's password file the box gets in, delivers what
waited, and the problem is cleared.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from demo.mosquitto import free_port
from edge.config import RefusalReportConfig
from edge.mqtt import OutboxSink
from edge.mqtt.refusal_report import RefusalReporter
from server.app import create_app
from server.auth import Role, create_user
from server.db.migrate import upgrade
from server.db.session import make_engine, session_factory
from server.settings import ServerSettings
from tests.edge.mqtt.support import make_event, sink_config
from tests.edge.mqtt.test_auth import SHIPPED_ACL, start_broker
from tests.server.api.live_server import serve
from tests.server.web.stack import wait_for

pytestmark = pytest.mark.broker

DEVICE = "van-31"


class Server:
    def __init__(self, workdir: Path) -> None:
        url = f"sqlite:///{workdir / 'streetwatch.db'}"
        upgrade(url)
        self.settings = ServerSettings(database_url=url, evidence_dir=str(workdir / "evidence"))
        engine = make_engine(url)
        with session_factory(engine)() as session:
            now = datetime.now(timezone.utc)
            box = create_user(session, DEVICE, Role.device, now).token
            self.viewer = create_user(session, "vic", Role.viewer, now).token
            session.commit()
        engine.dispose()
        self.token_file = workdir / "http-token"
        self.token_file.write_text(box + "\n")
        self.port = 0

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def box(self) -> dict[str, object] | None:
        reply = httpx.get(f"{self.api}/fleet", headers={"Authorization": f"Bearer {self.viewer}"}, timeout=5)
        return next((b for b in reply.json()["boxes"] if b["device_id"] == DEVICE), None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "server")
    with serve(create_app(running.settings)) as port:
        running.port = port
        yield running


def test_the_fleet_shows_a_refused_box_until_the_broker_lets_it_in(tmp_path: Path, server: Server) -> None:
    broker = start_broker(tmp_path / "broker", None, {DEVICE: "right"}, SHIPPED_ACL)
    report = {"url": server.api, "token_file": str(server.token_file)}
    config = sink_config(broker.port, tmp_path / "outbox.sqlite3", password="wrong", refusal_report=report)
    sink = OutboxSink.open(config, device_id=DEVICE)
    try:
        sink.emit(make_event(DEVICE, 0), None)
        wait_for(lambda: (server.box() or {}).get("health") == "refused", 20, "the box reported as refused")
        shown = server.box()
        assert shown is not None
        problem = str(shown["link_problem"])
        assert f"broker 127.0.0.1:{broker.port} refused the connection as 'van-31'" in problem
        assert "password" in problem.lower() or "authorized" in problem.lower()
        assert sink.outbox.depth().events == 1  # kept for when the broker lets it in

        # The operator fixes the broker's password file: the box gets in and the problem clears.
        broker.stop()
        broker = start_broker(tmp_path / "broker", broker.port, {DEVICE: "wrong"}, SHIPPED_ACL)
        wait_for(lambda: (server.box() or {}).get("link_problem") is None, 20, "the problem cleared")
        assert (server.box() or {}).get("health") != "refused"
    finally:
        sink.close(drain_timeout_s=0)
        broker.stop()


def test_a_server_out_of_reach_is_retried_with_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.mqtt.refusal_report")
    down = Server(tmp_path / "server")
    down.port = free_port()  # nothing listens there yet
    config = RefusalReportConfig(url=down.api, token_file=str(down.token_file))
    reporter = RefusalReporter(config, DEVICE, retry_min_s=0.05, retry_max_s=0.2)
    try:
        reporter.refused("broker x refused the connection as 'van-31': Not authorized")
        wait_for(lambda: len(caplog.records) >= 1, 10, "a warning")
        with serve(create_app(down.settings), port=down.port):  # the server is back
            wait_for(lambda: (down.box() or {}).get("health") == "refused", 10, "the report arrived")
    finally:
        reporter.stop()
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and f"cannot tell the server ({down.api}/" in warnings[0]  # not one per try

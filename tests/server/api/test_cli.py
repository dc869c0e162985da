"""The server's commands: migrate, user create, and real `server run` / `server ingest` processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import create_engine, func, select

from server.db.migrate import head_revision
from server.db.models import Event
from streetwatch.cli import main
from streetwatch.topics import events_topic
from tests.server.api.conftest import make_event
from tests.support.mosquitto import MosquittoBroker, free_port

REPO = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path, database_url: str, **extra: object) -> str:
    path = tmp_path / "server.yaml"
    path.write_text(
        yaml.safe_dump({"database_url": database_url, "evidence_dir": str(tmp_path / "ev"), **extra})
    )
    return str(path)


def test_migrate_up_down_and_user_create(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, db_url)
    # Before migrating, making a user fails and says what to run.
    assert main(["user", "create", "early", "--role", "viewer", "--config", config]) == 1
    assert "streetwatch server migrate" in capsys.readouterr().err

    assert main(["server", "migrate", "--config", config]) == 0
    assert f"database at migration {head_revision()}" in capsys.readouterr().out
    # a downgrade deletes data: it needs saying so
    assert main(["server", "migrate", "--config", config, "--revision", "base"]) == 1
    assert "repeat with --drop-data" in capsys.readouterr().err
    assert main(["server", "migrate", "--config", config, "--revision", "0099"]) == 1
    assert "--revision 0099: " in capsys.readouterr().err
    down = ["server", "migrate", "--config", config, "--drop-data", "--revision"]
    assert main([*down, "-1"]) == 0
    assert f"database at migration {int(head_revision()) - 1:04d}" in capsys.readouterr().out
    assert main([*down, "base"]) == 0
    assert "base (empty)" in capsys.readouterr().out
    assert main(["server", "migrate", "--config", config]) == 0
    capsys.readouterr()

    assert main(["user", "create", "alice", "--role", "reviewer", "--config", config]) == 0
    out = capsys.readouterr()
    token = out.out.strip()
    assert token.startswith("swt_") and "\n" not in token and "shown once" in out.err

    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import load_settings

    with TestClient(create_app(load_settings(config))) as client:
        me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["role"] == "reviewer"

    assert main(["user", "create", "alice", "--role", "admin", "--config", config]) == 1
    assert "exists already" in capsys.readouterr().err
    # a name the API could not show is refused here, not discovered later as a 500 in /users
    assert main(["user", "create", "bad name", "--role", "viewer", "--config", config]) == 1
    assert "user name 'bad name' is not allowed" in capsys.readouterr().err

    # A second token for the same user; both work.
    assert main(["user", "token", "alice", "--name", "laptop", "--config", config]) == 0
    second = capsys.readouterr().out.strip()
    assert second.startswith("swt_") and second != token
    with TestClient(create_app(load_settings(config))) as client:
        for each in (token, second):
            me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {each}"})
            assert me.status_code == 200
    assert main(["user", "token", "nobody", "--config", config]) == 1
    assert "no user named 'nobody'" in capsys.readouterr().err

    def status(each: str) -> int:
        with TestClient(create_app(load_settings(config))) as client:
            return client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {each}"}).status_code

    # the laptop is lost: its token is revoked, the other one keeps working
    assert main(["user", "revoke", "alice", "--name", "laptop", "--config", config]) == 0
    assert "revoked 1 token(s)" in capsys.readouterr().out
    assert (status(token), status(second)) == (200, 401)
    assert main(["user", "revoke", "alice", "--name", "laptop", "--config", config]) == 1
    assert "no live token named 'laptop'" in capsys.readouterr().err
    # a leaver: disabled, every token refused; enabled again, the unrevoked one works
    assert main(["user", "disable", "alice", "--config", config]) == 0
    assert status(token) == 401
    assert main(["user", "enable", "alice", "--config", config]) == 0
    assert (status(token), status(second)) == (200, 401)
    assert main(["user", "revoke", "alice", "--config", config]) == 0
    assert status(token) == 401


def test_user_create_with_a_password_from_stdin(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    config = _config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert main(["server", "migrate", "--config", config]) == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "create", "bob", "--role", "viewer", "--password-stdin", "--config", config]) == 1
    assert "at least 8" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["user", "create", "bob", "--role", "viewer", "--password-stdin", "--config", config]) == 0

    from fastapi.testclient import TestClient

    from server.app import create_app
    from server.settings import load_settings

    with TestClient(create_app(load_settings(config))) as client:
        signed_in = client.post("/api/v1/auth/token", json={"username": "bob", "password": "a-long-password"})
    assert signed_in.status_code == 201

    # A forgotten password, set again by the operator: the old sign-in ends, the new password works.
    monkeypatch.setattr("sys.stdin", io.StringIO("bobs-new-password\n"))
    assert main(["user", "password", "bob", "--config", config]) == 0
    assert "1 sign-in token(s) made with the old one revoked" in capsys.readouterr().out
    with TestClient(create_app(load_settings(config))) as client:
        old = {"Authorization": f"Bearer {signed_in.json()['token']}"}
        assert client.get("/api/v1/users/me", headers=old).status_code == 401
        again = client.post("/api/v1/auth/token", json={"username": "bob", "password": "bobs-new-password"})
        assert again.status_code == 201
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["user", "password", "bob", "--config", config]) == 1
    assert "at least 8" in capsys.readouterr().err

    # The operator's list: bob's first token and his new sign-in are live, the old sign-in is not.
    assert main(["user", "disable", "bob", "--config", config]) == 0
    capsys.readouterr()
    assert main(["user", "list", "--config", config]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("bob\tviewer\tdisabled\t2 live token(s)\tlast active "), line


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "streetwatch.cli", *args], cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


def test_server_run_serves_the_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert main(["server", "migrate", "--config", config]) == 0
    assert main(["user", "create", "v", "--role", "viewer", "--config", config]) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    port = free_port()
    proc = _spawn(["server", "run", "--config", config, "--port", str(port)], tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, (tmp_path / "run.log").read_text()
                assert time.monotonic() < deadline, "server run did not listen within 30 s"
                time.sleep(0.2)
        assert health.json() == {"status": "ok"}
        cases = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/cases", headers={"Authorization": f"Bearer {token}"}
        )
        assert cases.status_code == 200 and cases.json()["total"] == 0
    finally:
        _stop(proc)


def test_server_run_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite'}")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "streetwatch.cli",
            "server",
            "run",
            "--config",
            config,
            "--port",
            str(free_port()),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "streetwatch server migrate" in result.stderr


@pytest.mark.broker
def test_server_ingest_stores_events_from_the_broker_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'db.sqlite'}"
    with MosquittoBroker(tmp_path / "broker") as broker:
        config = _config(tmp_path, database, mqtt={"host": "127.0.0.1", "port": broker.port})
        assert main(["server", "migrate", "--config", config]) == 0
        proc = _spawn(
            ["server", "ingest", "--config", config, "--client-id", "ingest-7"], tmp_path / "ingest.log"
        )
        try:
            publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="box-1-test", protocol=mqtt.MQTTv5)
            publisher.connect("127.0.0.1", broker.port)
            publisher.loop_start()
            engine = create_engine(database)
            try:
                deadline = time.monotonic() + 30
                stored = 0
                event = make_event()
                while stored == 0:
                    # Re-publishing the same event until the worker is subscribed is harmless: one row.
                    publisher.publish(events_topic("box-1"), event.to_json(), qos=1).wait_for_publish(5)
                    time.sleep(0.5)
                    with engine.connect() as connection:
                        stored = connection.execute(select(func.count()).select_from(Event)).scalar_one()
                    assert proc.poll() is None, (tmp_path / "ingest.log").read_text()
                    assert time.monotonic() < deadline, (tmp_path / "ingest.log").read_text()
                assert stored == 1
            finally:
                engine.dispose()
                publisher.loop_stop()
                publisher.disconnect()
        finally:
            code = _stop(proc)
    assert code == 0, (tmp_path / "ingest.log").read_text()
    assert "ingest worker ingest-7" in (tmp_path / "ingest.log").read_text()

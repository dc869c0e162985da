"""``streetwatch server check-config``: what would run, from the file under the environment, with
passwords masked; a wrong value is named and the exit status is 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from server.settings import load_settings
from streetwatch.cli import main


def test_check_config_prints_what_would_run_with_passwords_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("mqtt: {host: file.local, port: 8883}\n")
    monkeypatch.setenv("STREETWATCH_MQTT__PORT", "1884")
    monkeypatch.setenv("STREETWATCH_MQTT__USERNAME", "ingest-2")
    monkeypatch.setenv("STREETWATCH_MQTT__PASSWORD", "broker-secret")
    monkeypatch.setenv("STREETWATCH_DATABASE_URL", "postgresql://sw:db-secret@db.city/streetwatch")
    monkeypatch.setenv("STREETWATCH_TEST_PG_URL", "postgresql://not-a-setting")

    assert main(["server", "check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "broker-secret" not in out and "db-secret" not in out
    shown = yaml.safe_load(out)
    assert shown["database_url"] == "postgresql://sw:***@db.city/streetwatch"
    assert shown["mqtt"] == {**shown["mqtt"], "host": "file.local", "port": 1884, "password": "**********"}
    expected = load_settings(config).model_dump(mode="json")
    assert {**shown, "database_url": None, "mqtt": None} == {**expected, "database_url": None, "mqtt": None}
    last = out.rstrip().splitlines()[-1]
    assert last == (
        f"# server settings {config}: ok; from the environment: STREETWATCH_DATABASE_URL, "
        "STREETWATCH_MQTT__PASSWORD, STREETWATCH_MQTT__PORT, STREETWATCH_MQTT__USERNAME"
    )


def test_check_config_names_a_wrong_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREETWATCH_LIMITS__BATCH_SIZE", "many")
    assert main(["server", "check-config"]) == 1
    err = capsys.readouterr().err
    assert "STREETWATCH_LIMITS__BATCH_SIZE (limits.batch_size): Input should be a valid integer" in err

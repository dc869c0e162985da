"""Each ingest worker logs in to the broker as its own user, bound to the client id of that name."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import load_settings
from streetwatch.errors import ConfigError


def test_client_id_follows_the_broker_username_unless_given() -> None:
    assert load_settings(None, env={"STREETWATCH_MQTT__USERNAME": "ingest-2"}).mqtt.client_id == "ingest-2"
    explicit = {"STREETWATCH_MQTT__USERNAME": "ingest-2", "STREETWATCH_MQTT__CLIENT_ID": "other"}
    assert load_settings(None, env=explicit).mqtt.client_id == "other"
    assert load_settings(None, env={}).mqtt.client_id == "streetwatch-ingest"


def test_the_password_can_come_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("s3cret-pw\n")
    settings = load_settings(None, env={"STREETWATCH_MQTT__PASSWORD_FILE": str(secret)})
    assert settings.mqtt.password is not None and settings.mqtt.password.get_secret_value() == "s3cret-pw"
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings.mqtt)
    with pytest.raises(ConfigError, match="not both"):
        load_settings(
            None, env={"STREETWATCH_MQTT__PASSWORD_FILE": str(secret), "STREETWATCH_MQTT__PASSWORD": "x"}
        )
    with pytest.raises(ConfigError, match="cannot read the broker password file"):
        load_settings(None, env={"STREETWATCH_MQTT__PASSWORD_FILE": str(tmp_path / "missing")})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        load_settings(None, env={"STREETWATCH_MQTT__PASSWORD_FILE": str(tmp_path / "empty")})

"""Server settings: defaults, YAML, environment overrides, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.settings import MAX_RADIUS_M, ServerSettings, load_settings
from streetwatch.errors import ConfigError


def test_defaults_cover_every_violation_type() -> None:
    settings = load_settings(None, env={})
    assert settings.database_url.startswith("sqlite:///")
    assert {t.value: r.radius_m for t, r in settings.matching.items()} == {
        "street_vending": 30,
        "garbage_overflow": 20,
        "illegal_signboard": 15,
        "unsealed_truck": 50,
    }


def test_yaml_then_environment(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(
        "database_url: sqlite:///elsewhere.db\n"
        "mqtt: {host: broker.local, port: 8883}\n"
        "matching:\n  garbage_overflow: {radius_m: 25, join_window_s: 60, recurrence_window_s: 0,"
        " sla_hours: 1, priority: 1}\n"
    )
    env = {"STREETWATCH_MQTT__PORT": "1884", "STREETWATCH_MATCHING__STREET_VENDING__RADIUS_M": "40"}
    settings = load_settings(path, env=env)
    assert settings.database_url == "sqlite:///elsewhere.db"
    assert (settings.mqtt.host, settings.mqtt.port) == ("broker.local", 1884)
    assert settings.rule("garbage_overflow").radius_m == 25
    assert settings.rule("street_vending").radius_m == 40
    assert settings.rule("illegal_signboard").radius_m == 15  # untouched types keep their defaults


def test_unrelated_environment_is_ignored() -> None:
    settings = load_settings(None, env={"STREETWATCH_TEST_PG_URL": "postgresql://x", "STREETWATCH_HOME": "/"})
    assert settings == ServerSettings()


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("mqtt: {prot: 1}\n", "mqtt.prot"),
        ("limits: {batch_size: 0}\n", "limits.batch_size"),
        (f"matching: {{garbage_overflow: {{radius_m: {MAX_RADIUS_M + 1}}}}}\n", "radius_m"),
        ("- a list\n", "mapping"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_settings_name_what_is_wrong(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "server.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_settings(path, env={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml", env={})


def test_every_field_is_described() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():  # type: ignore[attr-defined]
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            annotation = field.annotation
            if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
                missing += walk(annotation)
        return missing

    from server.settings import MatchingRule

    assert walk(ServerSettings) + walk(MatchingRule) == []

"""Server settings: defaults, YAML, the environment (never for settings built in code), clear errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from server.settings import MAX_RADIUS_M, ServerSettings, load_settings
from streetwatch.errors import ConfigError
from streetwatch.events import ViolationType


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


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own STREETWATCH_* variables must not leak into tests that build settings.
    monkeypatch.setenv("STREETWATCH_MQTT__HOST", "broker.from-env")
    monkeypatch.setenv("STREETWATCH_DATABASE_URL", "sqlite:///from-env.db")
    assert ServerSettings().mqtt.host == "127.0.0.1"
    assert ServerSettings(database_url="sqlite:///given.db").database_url == "sqlite:///given.db"
    assert load_settings(None, env={}) == ServerSettings()
    # ... while the normal path reads them from the process environment.
    loaded = load_settings(None)
    assert (loaded.mqtt.host, loaded.database_url) == ("broker.from-env", "sqlite:///from-env.db")


def test_given_values_win_over_environment_over_file_over_defaults(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("mqtt: {host: file.local, port: 8883, keepalive_s: 40}\nevidence_dir: file/evidence\n")
    env = {"STREETWATCH_MQTT__HOST": "env.local", "STREETWATCH_MQTT__PORT": "1884"}
    settings = ServerSettings.load(path, env=env, mqtt={"host": "given.local"})
    assert settings.mqtt.host == "given.local"  # given in code
    assert settings.mqtt.port == 1884  # environment over the file
    assert settings.mqtt.keepalive_s == 40  # the file over the default
    assert settings.evidence_dir == "file/evidence"
    assert settings.mqtt.share_group == "streetwatch-ingest"  # the default


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"STREETWATCH_MQTT__PORT": "eighty"},
            "STREETWATCH_MQTT__PORT (mqtt.port): Input should be a valid integer",
        ),
        ({"STREETWATCH_MQTT__PORT": "70000"}, "STREETWATCH_MQTT__PORT (mqtt.port): Input should be less"),
        ({"STREETWATCH_DATABASE_URL": "var/streetwatch.db"}, "STREETWATCH_DATABASE_URL (database_url): "),
        ({"STREETWATCH_DATABASE_URL": "mysql://u:pw@db/sw"}, "not a database URL the server can use"),
        ({"STREETWATCH_DATABASE_URL": "postgresql://u:pw@db:54x2/sw"}, "not a valid PostgreSQL URL"),
        ({"STREETWATCH_DATABASE_URL": "postgresql://u:pw@db:5432"}, "names no database"),
        ({"STREETWATCH_MQTT__HOTS": "typo"}, "STREETWATCH_MQTT__HOTS (mqtt.hots): Extra inputs"),
        ({"STREETWATCH_CONSOLE__TEAMS": "North,South"}, "STREETWATCH_CONSOLE__TEAMS is not valid JSON"),
        ({"STREETWATCH_MQTT": '{"port": "x"}'}, "STREETWATCH_MQTT (mqtt.port): Input should be a valid"),
        (
            {"STREETWATCH_MATCHING__UNSEALED_TRUCK__PRIORITY": "0"},
            "STREETWATCH_MATCHING__UNSEALED_TRUCK__PRIORITY (matching.unsealed_truck.priority)",
        ),
    ],
)
def test_a_bad_variable_is_named_in_one_clear_error(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env=env)
    message = str(caught.value)
    assert message.startswith("server settings is not valid:\n"), message
    assert expected in message
    assert "errors.pydantic.dev" not in message and "Traceback" not in message
    assert ":pw@" not in message  # a database URL's password is never repeated


def test_a_bad_file_value_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "server.yaml"
    path.write_text("mqtt: {port: eighty}\ndatabase_url: postgresql://u:pw@db/sw\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={"STREETWATCH_LIMITS__BATCH_SIZE": "0"})
    assert str(caught.value).splitlines() == [
        f"server settings {path} is not valid:",
        "  mqtt.port: Input should be a valid integer, unable to parse string as an integer",
        "  STREETWATCH_LIMITS__BATCH_SIZE (limits.batch_size): Input should be greater than or equal to 1",
    ]
    # The environment fixes what the file got wrong.
    assert load_settings(path, env={"STREETWATCH_MQTT__PORT": "1883"}).mqtt.port == 1883


def test_one_field_of_a_rule_keeps_the_rule_s_other_defaults() -> None:
    settings = load_settings(None, env={"STREETWATCH_MATCHING__GARBAGE_OVERFLOW__RADIUS_M": "25"})
    rule, default = settings.rule("garbage_overflow"), ServerSettings().rule("garbage_overflow")
    assert rule == default.model_copy(update={"radius_m": 25.0})


def test_passwords_stay_out_of_reprs() -> None:
    settings = ServerSettings(
        database_url="postgresql://streetwatch:hunter2@db.city:5432/streetwatch",
        mqtt={"username": "ingest-1", "password": "pw-ingest-1"},
    )
    shown = repr(settings)
    assert "hunter2" not in shown and "pw-ingest-1" not in shown
    assert "postgresql://streetwatch:***@db.city:5432/streetwatch" in shown
    assert settings.database_url.endswith(":hunter2@db.city:5432/streetwatch")  # the value itself is whole
    # Written out on purpose (the demo's server.yaml, a benchmark's worker), it loads back the same.
    assert ServerSettings.model_validate_json(settings.model_dump_json()) == settings


REPO = Path(__file__).resolve().parents[2]
#: STREETWATCH_* variables that are not server settings (tests, the box, scripts): left alone.
NOT_SETTINGS = {"TEST_PG_URL", "HOME", "TOKEN", "TRT_CACHE", "CONSOLE_SCREENSHOTS", "PG_DIR"}
#: Shown in docs/server-core.md as the typo that is refused.
TYPO_EXAMPLE = "MQTT__HOTS"


def _names_a_field(path: list[str]) -> bool:
    """Whether ``path`` (a variable's name without the prefix, split at ``__``) is a settings field."""
    from server.settings import MatchingRule

    model: Any = ServerSettings
    while path:
        key, *path = path
        if model is ServerSettings and key == "matching":
            if not path:
                return True
            violation, *path = path
            return violation in {t.value for t in ViolationType} and (
                not path or (len(path) == 1 and path[0] in MatchingRule.model_fields)
            )
        if not (isinstance(model, type) and key in getattr(model, "model_fields", {})):
            return False
        model = model.model_fields[key].annotation
    return True


def test_every_variable_the_docs_name_is_a_setting() -> None:
    # The variables the docs, the deploy notes and the settings module tell people to set.
    files = ["README.md", "docs/server-core.md", "docs/mqtt.md", "deploy/server.example.yaml",
             "deploy/mosquitto/README.md", "server/settings.py"]  # fmt: skip
    named = (
        {
            name
            for file in files
            for name in re.findall(r"STREETWATCH_([A-Z][A-Z0-9_]*[A-Z0-9])", (REPO / file).read_text())
        }
        - NOT_SETTINGS
        - {TYPO_EXAMPLE}
    )
    assert {"DATABASE_URL", "MQTT__HOST", "MQTT__USERNAME", "MQTT__PASSWORD_FILE"} <= named
    assert not _names_a_field(TYPO_EXAMPLE.lower().split("__"))
    wrong = sorted(name for name in named if not _names_a_field(name.lower().split("__")))
    assert wrong == [], f"documented STREETWATCH_ variables that name no setting: {wrong}"

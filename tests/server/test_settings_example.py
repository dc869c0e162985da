"""deploy/server.example.yaml explains every server setting, and the docs agree with the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from server.ingest.messages import RejectReason
from server.settings import ServerSettings, load_settings
from streetwatch.broker_security import DEFAULT_SHARE_GROUP

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "server.example.yaml"


def field_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every settings field as a dotted path; ``matching`` has one rule per violation type."""
    paths: set[str] = set()
    for name, info in model.model_fields.items():
        path = prefix + name
        paths.add(path)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            paths |= field_paths(annotation, path + ".")
    for violation, rule in ServerSettings().matching.items() if model is ServerSettings else ():
        paths |= field_paths(type(rule), f"matching.{violation.value}.")
        paths.add(f"matching.{violation.value}")
    return paths


def yaml_paths(data: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for key, value in data.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= yaml_paths(value, f"{prefix}{key}.")
    return paths


def test_the_example_loads_and_shows_the_defaults() -> None:
    # Loaded without environment overrides, so what the file says is what runs.
    assert load_settings(EXAMPLE, env={}) == ServerSettings()


def test_the_example_shows_every_field_in_its_section() -> None:
    shown = yaml_paths(yaml.safe_load(EXAMPLE.read_text()))
    assert sorted(field_paths(ServerSettings) - shown) == [], f"fields missing from {EXAMPLE.name}"
    assert sorted(shown - field_paths(ServerSettings)) == [], f"keys in {EXAMPLE.name} that are no field"


def test_every_setting_in_the_example_has_a_comment() -> None:
    for line in EXAMPLE.read_text().splitlines():
        setting, _, comment = line.partition("#")
        if not setting.strip():
            continue  # a comment line or a blank line
        assert comment.strip(), f"setting without a comment in {EXAMPLE.name}: {line!r}"


def test_the_shared_subscription_group_is_one_name() -> None:
    # The worker subscribes with mqtt.share_group; the broker's rules grant DEFAULT_SHARE_GROUP: the
    # shipped defaults, the example and the docs must name the same group, or the broker refuses.
    group = ServerSettings().mqtt.share_group
    assert group == DEFAULT_SHARE_GROUP
    assert f"$share/{group}/streetwatch/v1/+/events" in (REPO / "docs" / "mqtt.md").read_text()
    assert f"share_group: {group}" in EXAMPLE.read_text()


def test_the_docs_list_every_rejection_reason() -> None:
    text = (REPO / "docs" / "server-core.md").read_text()
    assert "streetwatch_events_rejected_total" in text
    missing = [reason.value for reason in RejectReason if f"`{reason.value}`" not in text]
    assert missing == [], f"rejection reasons not explained in docs/server-core.md: {missing}"

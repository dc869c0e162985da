"""``streetwatch edge check-config`` looks at the updates section: key, token, sink."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.config import JsonlSinkConfig, MqttSinkConfig, RefusalReportConfig
from edge.config_check import check_device_config
from tests.edge.updates.support import box_config, write_public_key


def test_check_config_names_what_updates_would_trip_over(tmp_path: Path) -> None:
    key = write_public_key(Ed25519PrivateKey.generate(), tmp_path / "fleet.pub")
    good = box_config(tmp_path / "box", 1883, "van-check", key)
    assert check_device_config(good, load_models=False).problems == []

    (tmp_path / "not-a-key.pub").write_text("hello")
    broken = good.model_copy(
        update={
            "updates": good.updates.model_copy(  # type: ignore[union-attr]
                update={
                    "release_public_key": str(tmp_path / "not-a-key.pub"),
                    "http_token_file": str(tmp_path / "none"),
                }
            ),
            "sink": JsonlSinkConfig(path=str(tmp_path / "events.jsonl")),
        }
    )
    problems = check_device_config(broken, load_models=False).problems
    assert any(p.startswith("updates: over-the-air updates need sink.kind 'mqtt'") for p in problems), (
        problems
    )
    assert any(p.startswith("updates.release_public_key:") and "not a PEM" in p for p in problems)
    assert any(p.startswith("updates.http_token_file: cannot read") for p in problems), problems


def test_two_detectors_running_the_same_model_cannot_be_told_apart_by_an_update(tmp_path: Path) -> None:
    key = write_public_key(Ed25519PrivateKey.generate(), tmp_path / "fleet.pub")
    good = box_config(tmp_path / "box", 1883, "van-check", key)
    assert check_device_config(good).problems == []  # one streetwatch-det: nothing to tell apart
    detector = good.detectors[0]
    twice = good.model_copy(update={"detectors": [detector, detector]})
    problems = check_device_config(twice).problems
    assert problems == [
        "detectors[0] and detectors[1] both run 'streetwatch-det': an over-the-air update names the model it "
        "replaces and could not tell them apart (give each its own 'name')"
    ]
    named = twice.model_copy(
        update={"detectors": [detector, detector.model_copy(update={"name": "signs-det"})]}
    )
    assert check_device_config(named).problems == []


def test_check_config_names_a_refusal_report_that_could_not_be_sent(tmp_path: Path) -> None:
    key = write_public_key(Ed25519PrivateKey.generate(), tmp_path / "fleet.pub")
    good = box_config(tmp_path / "box", 1883, "van-check", key)
    assert isinstance(good.sink, MqttSinkConfig)
    token = tmp_path / "http-token"
    token.write_text("swt_token\n")
    wanted = RefusalReportConfig(url="https://streetwatch.example.org/api/v1", token_file=str(token))
    reported = good.model_copy(update={"sink": good.sink.model_copy(update={"refusal_report": wanted})})
    assert check_device_config(reported, load_models=False).problems == []

    token.write_text("\n")
    wrong = wanted.model_copy(update={"url": "streetwatch.example.org"})
    broken = good.model_copy(update={"sink": good.sink.model_copy(update={"refusal_report": wrong})})
    problems = check_device_config(broken, load_models=False).problems
    assert "sink.refusal_report.url: 'streetwatch.example.org' is not an http(s) URL" in problems
    why = f"the box's HTTP token file {token} is empty; put the token on its first line"
    assert f"sink.refusal_report.token_file: {why}" in problems

"""The dynamic-security file: names that cannot be topic levels, duplicates, and the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from streetwatch.broker_security import build_dynsec, main
from streetwatch.errors import ConfigError


def test_names_must_be_unique_topic_levels() -> None:
    with pytest.raises(ConfigError, match="not allowed"):
        build_dynsec({"van/1": "pw"}, {"ingest-1": "pw"})
    with pytest.raises(ConfigError, match="not allowed"):
        build_dynsec({"#": "pw"}, {"ingest-1": "pw"})
    with pytest.raises(ConfigError, match="used twice: ingest-1"):
        build_dynsec({"ingest-1": "pw"}, {"ingest-1": "pw"})
    with pytest.raises(ConfigError, match="at least one ingest"):
        build_dynsec({"van-1": "pw"}, {})


def test_cli_writes_a_private_file_with_hashed_passwords(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "boxes.txt").write_text("# fleet\nvan-1:first:pw\n\nvan-2:second\n")
    (tmp_path / "workers.txt").write_text("ingest-1:w1\n")
    out = tmp_path / "dynsec.json"
    code = main(
        [
            "--devices",
            str(tmp_path / "boxes.txt"),
            "--ingest",
            str(tmp_path / "workers.txt"),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert out.stat().st_mode & 0o077 == 0
    config = json.loads(out.read_text())
    van1 = next(c for c in config["clients"] if c["username"] == "van-1")
    digest = hashlib.pbkdf2_hmac(
        "sha512", b"first:pw", base64.b64decode(van1["salt"]), van1["iterations"], 64
    )
    assert van1["password"] == base64.b64encode(digest).decode()  # a ':' in a password is kept
    assert "first:pw" not in out.read_text()
    assert van1["clientid"] == "van-1"
    (tmp_path / "bad.txt").write_text("van-3\n")
    bad = [
        "--devices",
        str(tmp_path / "bad.txt"),
        "--ingest",
        str(tmp_path / "workers.txt"),
        "--out",
        str(out),
    ]
    assert main(bad) == 2
    assert "bad.txt:1: expected name:password" in capsys.readouterr().err

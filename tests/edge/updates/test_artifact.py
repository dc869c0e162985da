"""Fetching a release without a box around it: superseded partial downloads go, a full disk refuses."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.updates import artifact
from edge.updates.artifact import UpdateRefused, fetch_verified
from tests.edge.updates.support import DET_INT8, ReleaseServer, box_config, model_command, write_public_key


def test_a_new_release_drops_the_cut_download_of_an_older_one(tmp_path: Path, server: ReleaseServer) -> None:
    key = Ed25519PrivateKey.generate()
    updates = box_config(tmp_path / "box", 1883, "van-art", write_public_key(key, tmp_path / "k.pub")).updates
    assert updates is not None
    steps: list[str] = []
    server.cut_at = 1000
    old = model_command(server, DET_INT8, key, version="1.3.0")
    with pytest.raises(UpdateRefused, match="resumes next time"):
        fetch_verified("model", old, updates, key.public_key(), lambda step, _share: steps.append(step))
    assert len(list(Path(updates.staging_dir).glob("*.part"))) == 1  # kept for a resume

    server.cut_at = None
    other = tmp_path / "other.onnx"
    other.write_bytes(DET_INT8.read_bytes() + b"\0")  # another release of the same model
    new = model_command(server, other, key, version="1.4.0")
    staged = fetch_verified("model", new, updates, key.public_key(), lambda step, _share: steps.append(step))
    assert staged.read_bytes() == other.read_bytes()
    assert list(Path(updates.staging_dir).glob("*.part")) == [staged]  # the older part is gone
    assert steps[-1] == "verify" and "download" in steps


def test_a_download_that_would_fill_the_disk_is_refused(
    tmp_path: Path, server: ReleaseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Ed25519PrivateKey.generate()
    updates = box_config(tmp_path / "box", 1883, "van-art", write_public_key(key, tmp_path / "k.pub")).updates
    assert updates is not None
    command = model_command(server, DET_INT8, key, version="1.3.0")
    real = shutil.disk_usage

    def nearly_full(path: Any) -> Any:  # a full disk cannot be made safely on a shared machine
        usage = real(path)
        return usage._replace(free=artifact.RESERVE_BYTES + command.size // 2)

    monkeypatch.setattr(artifact.shutil, "disk_usage", nearly_full)
    with pytest.raises(UpdateRefused, match="not enough disk") as refused:
        fetch_verified("model", command, updates, key.public_key(), lambda _step, _share: None)
    assert refused.value.step == "download" and not server.requests

"""Fixtures shared by the update tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.updates.support import ReleaseServer


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReleaseServer]:
    """An HTTP server handing out the files put in ``tmp_path/releases``."""
    (tmp_path / "releases").mkdir()
    running = ReleaseServer(tmp_path / "releases")
    yield running
    running.close()

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.mqtt.support import Collector
from tests.support.mosquitto import MosquittoBroker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    with MosquittoBroker(tmp_path / "broker") as running:
        yield running


@pytest.fixture
def collector(broker: MosquittoBroker) -> Iterator[Collector]:
    c = Collector(broker.port)
    assert c.subscribed.wait(5), "the collector could not subscribe"
    yield c
    c.close()

"""The publisher's "idle" signal must never be set over a row committed while it was checking.

close() and wait_until_delivered() trust that signal; a stale one made close() skip the
drain and leave almost the whole outbox behind. The race (a notify() arriving between
the publisher's "nothing new?" check and its idle.set()) is forced here deterministically
by committing a row from inside the step, at the exact point between the two.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, cast

from edge.mqtt.connection import MqttConnection
from edge.mqtt.publisher import OutboxPublisher
from edge.outbox import Outbox, OutboxLimits, OutboxMessage


class LinkUp:
    """Stands in for the broker connection: always up, accepts every publish."""

    def __init__(self) -> None:
        self.connected = threading.Event()
        self.connected.set()
        self.window = 10
        self.max_packet_size: int | None = None
        self.published: list[str] = []

    def publish(self, topic: str, payload: bytes, **_: Any) -> int:
        self.published.append(topic)
        return len(self.published)


def test_a_row_committed_during_the_idle_check_keeps_the_publisher_busy(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", OutboxLimits(max_bytes=1 << 20, max_age_s=3600))
    link = LinkUp()
    publisher = OutboxPublisher(outbox, cast(MqttConnection, link))
    publisher._reader = outbox.reader()  # what the publisher thread does first; here we drive _step
    write = publisher._write

    def emit_during_check(*, force: bool) -> None:
        write(force=force)
        if force and not link.published and outbox.depth().events == 0:
            outbox.put([OutboxMessage("event", "streetwatch/v1/box/events", b"{}")])
            publisher.notify()  # what OutboxSink.emit does after its commit

    publisher._write = emit_during_check  # type: ignore[method-assign]
    publisher._step()  # reads nothing, then a row lands before it can call itself idle
    assert not publisher.wait_idle(0), "idle was set over a row that had just been committed"

    publisher._step()
    assert link.published == ["streetwatch/v1/box/events"]
    publisher._reader.close()
    outbox.close()

"""Validation off the MQTT network thread: a few decode lanes, each device always on the same lane.

    lanes = DecodeLanes(decode_one, deliver, name="ingest-1")
    lanes.start()
    lanes.submit(RawMessage(topic, payload, mid, qos, connection))   # from paho's on_message
    lanes.stop()

The network thread only hands raw bytes over, so a slow or huge payload (a large image,
hostile JSON) never delays keepalives, acknowledgements or other devices' messages on
the connection. A device's messages stay in order because they always take the same
lane; a slow payload holds up only the devices that share its lane, never the rest.
The number of undecoded messages is bounded by the broker's Receive Maximum: a message
is acknowledged only after its batch commits.
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads that validate messages; enough to keep one slow device from stalling the rest.
DECODE_LANES = 4


@dataclass(frozen=True, slots=True)
class RawMessage:
    """An MQTT message as it came off the network thread."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # which connection delivered it: a message id is only valid on its own
    retained: bool = False  # published with the retain flag (kept as published by the subscription)


def lane_of(topic: str, lanes: int = DECODE_LANES) -> int:
    """The lane of ``topic``'s device (``streetwatch/v1/<device>/...``), stable across runs."""
    parts = topic.split("/", 3)
    device = parts[2] if len(parts) > 2 else topic
    return zlib.crc32(device.encode("utf-8", "replace")) % lanes


class DecodeLanes(Generic[T]):
    """``lanes`` threads that run ``decode`` on submitted messages and ``deliver`` the results."""

    def __init__(
        self,
        decode: Callable[[RawMessage], T],
        deliver: Callable[[T], None],
        *,
        name: str,
        lanes: int = DECODE_LANES,
    ) -> None:
        self._decode = decode
        self._deliver = deliver
        self._name = name
        self._queues: list[queue.SimpleQueue[RawMessage | None]] = [queue.SimpleQueue() for _ in range(lanes)]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index, lane in enumerate(self._queues):
            thread = threading.Thread(
                target=self._run, args=(lane,), name=f"{self._name}-decode-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def submit(self, message: RawMessage) -> None:
        """Hand ``message`` to its device's lane; returns at once."""
        self._queues[lane_of(message.topic, len(self._queues))].put(message)

    def stop(self, timeout: float = 5.0) -> None:
        """Let each lane finish the message in hand; what waits undecoded stays unacknowledged."""
        for lane in self._queues:
            lane.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _run(self, lane: queue.SimpleQueue[RawMessage | None]) -> None:
        while True:
            message = lane.get()
            if message is None:
                return
            try:
                self._deliver(self._decode(message))
            except Exception:  # decode turns bad input into refusals; this is a bug, keep the lane alive
                log.exception("%s: cannot decode %s", self._name, message.topic)

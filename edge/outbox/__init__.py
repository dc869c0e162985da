"""A durable on-disk queue (SQLite, WAL) between the detection loop and the network.

``Outbox.put`` commits before anything is sent; the publisher reads with
``Outbox.reader()`` in id order and deletes only what the broker acknowledged.
"""

from edge.outbox.store import (
    DROP_ORDER,
    Depth,
    Kind,
    Outbox,
    OutboxLimits,
    OutboxMessage,
    OutboxReader,
    StoredMessage,
)

__all__ = [
    "DROP_ORDER",
    "Depth",
    "Kind",
    "Outbox",
    "OutboxLimits",
    "OutboxMessage",
    "OutboxReader",
    "StoredMessage",
]

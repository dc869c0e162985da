"""A durable on-disk queue (SQLite, WAL) between the detection loop and the network.

``Outbox.put`` commits before anything is sent; the publisher reads with
``Outbox.reader()`` in id order and deletes only what the server acknowledged
as stored (its ``StoredAck``), re-sending what stays unacknowledged.
"""

from edge.outbox.reader import Changes, OutboxReader, StoredMessage
from edge.outbox.store import DROP_ORDER, Depth, Kind, Outbox, OutboxLimits, OutboxMessage

__all__ = [
    "DROP_ORDER",
    "Changes",
    "Depth",
    "Kind",
    "Outbox",
    "OutboxLimits",
    "OutboxMessage",
    "OutboxReader",
    "StoredMessage",
]

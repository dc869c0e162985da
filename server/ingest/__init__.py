"""MQTT ingest: validate what edge boxes send, store it idempotently and merge events into cases.

``worker`` is the MQTT consumer (client, callbacks, inbox, acknowledgements), ``decoding``
validates off the network thread, ``storer`` stores one batch per transaction with an
explicit outcome, ``process`` holds the transaction-level logic (usable without MQTT, e.g. in
tests and benchmarks), ``scope`` says where matching an event looks for cases, and ``acks``
what each box is told once its messages are committed. docs/server-core.md walks one event
through these files.
"""

from server.ingest.worker import IngestWorker

__all__ = ["IngestWorker"]

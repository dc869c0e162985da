"""MQTT ingest: validate what edge boxes send, store it idempotently and merge events into cases.

``process`` holds the transaction-level logic (usable without MQTT, e.g. in
tests and benchmarks); ``worker`` is the MQTT client that feeds it in batches.
"""

from server.ingest.worker import IngestWorker

__all__ = ["IngestWorker"]

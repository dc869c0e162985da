"""Start and stop a real Mosquitto broker on a free loopback port, for tests and benchmarks.

    with MosquittoBroker(tmp_path) as broker:
        client.connect("127.0.0.1", broker.port)

``stop()`` / ``start()`` may be called again on the same object to simulate a
broker outage; the port and persistence file are kept, so a restarted broker
still holds persistent sessions and queued QoS 1 messages. Password files and
ACLs: ``MosquittoBroker(tmp_path, users={...}, acl=...)``. The implementation is
the product's launcher, :mod:`demo.mosquitto`.
"""

from demo.mosquitto import MosquittoBroker, free_port

__all__ = ["MosquittoBroker", "free_port"]

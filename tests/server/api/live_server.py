"""Serve an app with real uvicorn on a loopback port, in a thread: for what only a real server
shows (how much of a body it reads, what its access log says)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from demo.mosquitto import free_port


@contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[int]:
    """Yield the port uvicorn listens on (``port``, or a free one); stop it afterwards."""
    port = port or free_port()
    # log_config=None: uvicorn logs through the loggers as they are (pytest's caplog sees them).
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=True, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)

"""systemd's notify protocol without a dependency: READY, WATCHDOG and STATUS over ``$NOTIFY_SOCKET``.

A unit with ``Type=notify`` and ``WatchdogSec=`` (deploy/jetson/) learns from the box:

* ``READY=1`` once the models are loaded and the source is open (the pipeline starts);
* ``WATCHDOG=1`` while frames flow, at most every half watchdog period: a pipeline that
  stalls (a hung camera read, a model that never returns) stops pinging and systemd
  restarts the service, whose install state then rolls back a model on probation;
* ``STATUS=...`` for long steps (loading models, downloading or probing an update), shown
  by ``systemctl status``.

Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing.

    >>> notifier = SystemdNotifier(socket_path=None)
    >>> notifier.ready(), notifier.watchdog(), notifier.status("loading models")
    (False, False, False)
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

log = logging.getLogger(__name__)

#: Ping interval when systemd does not say its watchdog period.
DEFAULT_PING_S = 5.0


class SystemdNotifier:
    def __init__(self, socket_path: str | None, watchdog_usec: int | None = None) -> None:
        self._address: str | None = None
        if socket_path:
            # An abstract socket is written with a leading '@' and addressed with a NUL byte.
            self._address = "\0" + socket_path[1:] if socket_path.startswith("@") else socket_path
        self._ping_every = (watchdog_usec / 2e6) if watchdog_usec else DEFAULT_PING_S
        self._last_ping = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_environment(cls) -> SystemdNotifier:
        usec = os.environ.get("WATCHDOG_USEC", "")
        return cls(os.environ.get("NOTIFY_SOCKET"), int(usec) if usec.isdigit() else None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one datagram; False when not under systemd or the socket refused it (never raises)."""
        if self._address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self._address)
                sock.sendall(message.encode())
            return True
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)
            return False

    def ready(self) -> bool:
        return self.notify("READY=1")

    def status(self, text: str) -> bool:
        return self.notify("STATUS=" + text.replace("\n", " ")[:200])

    def watchdog(self) -> bool:
        """Ping the watchdog, rate-limited: call it on every frame."""
        if self._address is None:
            return False
        now = time.monotonic()
        with self._lock:
            if now - self._last_ping < self._ping_every:
                return False
            self._last_ping = now
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

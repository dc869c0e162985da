"""Sign-in throttling: failed passwords per username, attempts per client address.

    throttle = LoginThrottle(failures_per_user=5, attempts_per_address=30, window_s=300)
    wait = throttle.retry_after(username, address)   # seconds to wait, or None
    ...
    throttle.record(username, address, succeeded=False)

Both limits are sliding windows: a key is refused while it has used up its limit within the
last ``window_s`` seconds, and ``retry_after`` says when the oldest counted attempt leaves the
window. The username limit counts failures only (a user who signs in often is not locked
out) and applies whether or not the name exists, so a 429 tells nothing about accounts. The
address limit counts every attempt, so one address cannot spray many names.

The counters live in this process (each API process throttles on its own: with N processes
behind one port an address gets at most N times the limit). They hold at most ``max_keys``
names and addresses, dropping the least recently used, so a stream of random names cannot
grow memory. Behind a reverse proxy, run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` so the address is the client's, not the proxy's.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class _Windows:
    """Timestamps of recent hits per key, at most ``limit`` each, at most ``max_keys`` keys."""

    def __init__(self, limit: int, window_s: float, max_keys: int) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()

    def wait(self, key: str, now: float) -> float | None:
        hits = self._hits.get(key)
        if hits is None:
            return None
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if not hits:
            del self._hits[key]
            return None
        if len(hits) < self.limit:
            return None
        return hits[0] + self.window_s - now

    def hit(self, key: str, now: float) -> None:
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.limit)
            while len(self._hits) > self.max_keys:
                self._hits.popitem(last=False)
        else:
            self._hits.move_to_end(key)
        hits.append(now)


class LoginThrottle:
    def __init__(
        self,
        failures_per_user: int,
        attempts_per_address: int,
        window_s: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = _Windows(failures_per_user, window_s, max_keys)
        self._addresses = _Windows(attempts_per_address, window_s, max_keys)
        self._clock = clock
        self._lock = threading.Lock()

    def retry_after(self, username: str, address: str) -> tuple[int, str] | None:
        """``(seconds, which limit)`` when this attempt must be refused, else None."""
        with self._lock:
            now = self._clock()
            by_address = self._addresses.wait(address, now)
            by_user = self._users.wait(username, now)
        if by_address is None and by_user is None:
            return None
        if by_user is not None and (by_address is None or by_user >= by_address):
            return max(1, math.ceil(by_user)), "user"
        assert by_address is not None
        return max(1, math.ceil(by_address)), "address"

    def record(self, username: str, address: str, succeeded: bool) -> None:
        """Count one attempt that was let through (refused ones are not counted again)."""
        with self._lock:
            now = self._clock()
            self._addresses.hit(address, now)
            if not succeeded:
                self._users.hit(username, now)

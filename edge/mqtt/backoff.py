"""Exponential backoff with full jitter, for reconnects and refused publishes.

Jitter (a uniform wait between the minimum and the exponential cap) spreads a fleet of
boxes that lost the same broker at the same moment, so they do not all come back
in the same second.

Why hand-written: paho-mqtt's own reconnect delay has no jitter and covers only reconnects, not
refused publishes; ``tenacity`` and ``backoff`` wrap function calls in retry loops, while the
publisher and the connection need a wait to sleep on in their own loops.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, minimum_s: float, maximum_s: float, *, rng: random.Random | None = None) -> None:
        if minimum_s <= 0 or maximum_s < minimum_s:
            raise ValueError(f"backoff needs 0 < minimum ({minimum_s}) <= maximum ({maximum_s})")
        self.minimum_s = minimum_s
        self.maximum_s = maximum_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait before the next attempt; each call counts one more failure."""
        cap = min(self.maximum_s, self.minimum_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return self._rng.uniform(self.minimum_s, max(self.minimum_s, cap))

    def reset(self) -> None:
        self.failures = 0

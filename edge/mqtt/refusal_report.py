"""Telling the server over HTTP that the broker refuses this box, and when it stops.

A box whose broker login is refused (a rotated password not yet on the box, a removed role) can
publish nothing: its events wait in the outbox, and the server only sees it fall silent. With
``sink.refusal_report`` the box says why on the one channel left, the server's HTTP API with its
own token (``PUT /fleet/devices/{id}/link``), and the fleet page shows it:

    reporter = RefusalReporter(config.refusal_report, device_id)
    reporter.refused("broker 10.0.0.5:8883 refused the connection as 'van-07': Not authorized")
    reporter.connected()   # the broker let it in: the server clears the problem
    reporter.stop()

Both calls return at once (they run on the MQTT network thread); a thread of its own sends the
newest state whenever it differs from what the server holds, retrying with backoff while the
server is unreachable, and logs one line per change of that state, not one per attempt.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

import httpx

from edge.config import RefusalReportConfig
from edge.http_token import read_token
from edge.mqtt.backoff import Backoff
from streetwatch.errors import ConfigError

log = logging.getLogger(__name__)

Problem = tuple[str, datetime] | None  # what is wrong and since when; None: nothing


class RefusalReporter:
    def __init__(
        self,
        config: RefusalReportConfig,
        device_id: str,
        *,
        retry_min_s: float = 5.0,
        retry_max_s: float = 300.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._url = f"{config.url.rstrip('/')}/fleet/devices/{device_id}/link"
        self._token_file = config.token_file
        self._backoff = Backoff(retry_min_s, retry_max_s)  # jittered: a fleet refused at once spreads out
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._wanted: Problem = None
        self._held: Problem = None  # what the server holds, as far as this box knows
        self._changed = threading.Event()
        self._stopping = threading.Event()
        self._failing: str | None = None  # the send failure last logged
        self._thread = threading.Thread(target=self._run, name="refusal-report", daemon=True)
        self._thread.start()

    def refused(self, problem: str) -> None:
        with self._lock:
            since = self._wanted[1] if self._wanted is not None else datetime.now(timezone.utc)
            self._wanted = (problem, since)
        self._changed.set()

    def connected(self) -> None:
        with self._lock:
            self._wanted = None
        self._changed.set()

    def stop(self) -> None:
        self._stopping.set()
        self._changed.set()
        self._thread.join(self._timeout_s + 1)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._changed.wait()
            self._changed.clear()
            while not self._stopping.is_set():
                with self._lock:
                    wanted = self._wanted
                if _text(wanted) == _text(self._held):
                    self._backoff.reset()
                    break
                if self._send(wanted):
                    self._held = wanted
                    continue  # the state may have moved on meanwhile
                self._stopping.wait(self._backoff.next_delay())

    def _send(self, wanted: Problem) -> bool:
        body = {"problem": wanted[0], "since": wanted[1].isoformat()} if wanted else {"problem": None}
        try:
            token = read_token(self._token_file)  # read each time: a token replaced on disk is used
            reply = httpx.put(
                self._url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=self._timeout_s
            )
            reply.raise_for_status()
        except (ConfigError, httpx.HTTPError) as exc:
            failure = f"cannot tell the server ({self._url}) about the broker link: {_why(exc)}"
            if failure != self._failing:
                self._failing = failure
                log.warning("%s; retrying with backoff", failure)
            return False
        self._failing = None
        log.info("told the server: %s", wanted[0] if wanted else "the broker lets this box in again")
        return True


def _text(problem: Problem) -> str | None:
    return problem[0] if problem is not None else None


def _why(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.response.text[:160]}"
    return str(exc) or type(exc).__name__

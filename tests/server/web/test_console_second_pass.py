"""The console and street vending from a patrol, in a real headless Chromium against a real server
(Mosquitto, the ingest worker, SQLite, uvicorn): a first sighting stays out of the dispatcher's
queue, a supervisor finds it under its state, and the second pass brings it into the queue live."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.server.web.console import Console
from tests.server.web.stack import Sighting, Stack

pytestmark = [pytest.mark.browser, pytest.mark.broker]

NOW = datetime.now(timezone.utc)
PILE = Sighting("garbage_atanu_000678.jpg", "garbage_overflow", "overflow", (200, 220, 460, 480), 600)
#: A patrol van's sighting (its position comes from GNSS): it waits for a second pass.
STALL = Sighting("garbage_atanu_000272.jpg", "street_vending", "umbrella", (120, 200, 420, 520), 0)

ROWS = "() => [...document.querySelectorAll('#queue .row .title')].map(t => t.textContent)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("second-pass"))
    try:
        seen = [NOW - timedelta(minutes=60), NOW - timedelta(minutes=50)]
        running.send_cases(PILE, STALL, at=seen, what="the pile's case and the stall's sighting", timeout=30)
        yield running
    finally:
        running.close()


def test_a_sighting_waits_out_of_the_queue_until_the_second_pass_brings_it_in_live(
    browser: Any, stack: Stack
) -> None:
    console = Console(browser, stack)
    try:
        console.sign_in("rita")
        page = console.page
        page.select_option("#filter-state", "all")
        page.wait_for_function(f"() => ({ROWS})().length === 1")
        assert "Garbage overflow" in page.evaluate(ROWS)[0]  # every state but the waiting sighting

        page.select_option("#filter-state", "awaiting_recurrence")  # what a supervisor looks for
        page.wait_for_function(f"() => ({ROWS})().length === 1 && ({ROWS})()[0].includes('Street vending')")
        assert page.inner_text("#queue .row .badge.state-awaiting_recurrence") == "Awaiting 2nd pass"

        page.select_option("#filter-state", "review")
        page.wait_for_function(f"() => ({ROWS})().length === 1")
        # The same van's colleague passes 45 minutes later: the sighting is a case, and it arrives.
        stack.send(replace(STALL, device_id="van-02", north_m=8), at=NOW - timedelta(minutes=5))
        # Wait for both rows: a stream "reset" may reload the queue while the new case arrives.
        page.wait_for_function(
            f"() => ({ROWS})().length === 2 && ({ROWS})().some(t => t.includes('Street vending'))",
            timeout=30_000,
        )
        assert sorted(page.evaluate(ROWS))[1].endswith("Street vending · umbrella")
        assert console.errors == []
    finally:
        console.close()

"""Keyboard triage in the dispatcher console vs the bare REST API: is the page ever the bottleneck?

    python -m bench.console_triage [--cases 40]

Starts a real stack (Mosquitto, ingest worker, SQLite, uvicorn; tests/server/web/stack.py), sends
``--cases`` cases over MQTT from the shipped sample photos, then decides half of them through
the REST API the way a script would (GET the case, POST the action with expected_state), and
the other half in headless Chromium (Debian's /usr/bin/chromium) with the keyboard only: ``c``
or ``x 1`` per case (and ``1`` for a truck's load, which the decision asks), waiting each time
until the next case is drawn, as a person must. Prints ONE JSON object: cases per minute both
ways and their ratio. A reviewer's own target is 20 plain cases a minute (3 s per case); the
console's share of that is its milliseconds per case.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

from tests.server.web.conftest import CHROMIUM, CHROMIUM_FLAGS
from tests.server.web.console import Console
from tests.server.web.stack import Sighting, Stack, wait_for

TARGET_PER_MIN = 20.0
PHOTOS = [
    ("garbage_atanu_000272.jpg", "garbage_overflow", "overflow", (120.0, 200.0, 420.0, 520.0)),
    ("garbage_atanu_000535.jpg", "garbage_overflow", "garbage", (60.0, 150.0, 500.0, 560.0)),
    ("signboards_vdl_IMG_0048.jpg", "illegal_signboard", "a_frame_sign", (150.0, 300.0, 500.0, 800.0)),
    ("vehicles_vnv_1333_jpg.jpg", "unsealed_truck", "truck", (200.0, 145.0, 390.0, 335.0)),
]


def api_triage(stack: Stack, case_ids: list[int]) -> float:
    """Seconds to decide ``case_ids`` through the REST API alone."""
    headers = {"Authorization": f"Bearer {stack.tokens['rita']}"}
    started = time.perf_counter()
    with httpx.Client(base_url=stack.url, headers=headers, timeout=30) as client:
        for n, case_id in enumerate(case_ids):
            case = client.get(f"/api/v1/cases/{case_id}").json()
            body = (
                {"action": "confirm"} if n % 3 else {"action": "reject", "reject_reason": "not_a_violation"}
            )
            answer = client.post(
                f"/api/v1/cases/{case_id}/actions", json={**body, "expected_state": case["state"]}
            )
            answer.raise_for_status()
    return time.perf_counter() - started


def console_triage(stack: Stack, count: int) -> float:
    """Seconds to decide ``count`` cases in the console, keyboard only."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        console = Console(browser, stack)
        try:
            console.sign_in("rita")
            started = time.perf_counter()
            for n in range(count):
                current = console.case_id()
                keys = ("c",) if n % 3 else ("x", "1")
                # A truck's decision also asks its load (classes.yaml marks which loads are
                # violations): 1 is the first that fits, uncovered or covered.
                truck = console.title().split(" ", 1)[1].startswith("Unsealed truck")
                console.press(*keys, *(("1",) if truck else ()))
                if n < count - 1:
                    console.page.wait_for_function(
                        "id => !document.querySelector('#case-title').textContent.startsWith('#' + id + ' ')",
                        arg=current,
                    )
            wait_for(lambda: pending(stack) == 0, 30, "the last decision")
            elapsed = time.perf_counter() - started
            if console.errors:
                raise SystemExit(f"the page logged errors: {console.errors}")
            return elapsed
        finally:
            console.close()
            browser.close()


def pending(stack: Stack) -> int:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        answer = client.get(
            "/api/v1/cases?state=new&limit=1", headers={"Authorization": f"Bearer {stack.tokens['vic']}"}
        )
        total: int = answer.json()["total"]
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=40, help="cases to send (half per way)")
    args = parser.parse_args()
    if not CHROMIUM.exists():
        raise SystemExit(f"{CHROMIUM} is missing; `scripts/install.sh --dev` installs it")
    with tempfile.TemporaryDirectory(prefix="console-bench-") as workdir:
        stack = Stack(Path(workdir))
        try:
            now = datetime.now(timezone.utc)
            for n in range(args.cases):
                photo, violation, detector_class, box = PHOTOS[n % len(PHOTOS)]
                sighting = Sighting(photo, violation, detector_class, box, north_m=200.0 * n)
                stack.send(sighting, at=now - timedelta(seconds=args.cases - n))
            wait_for(lambda: stack.count_cases() == args.cases, 120, "the cases")
            ids = sorted(range(1, args.cases + 1))
            half = args.cases // 2
            api_s = api_triage(stack, ids[:half])
            console_s = console_triage(stack, args.cases - half)
        finally:
            stack.close()
    api_rate = half / api_s * 60
    console_rate = (args.cases - half) / console_s * 60
    print(
        json.dumps(
            {
                "cases_per_way": half,
                "api_cases_per_min": round(api_rate, 1),
                "console_cases_per_min": round(console_rate, 1),
                "console_ms_per_case": round(console_s / (args.cases - half) * 1000, 1),
                "ratio_console_to_api": round(console_rate / api_rate, 3),
                "reviewer_target_per_min": TARGET_PER_MIN,
                "console_share_of_target_time": round(
                    console_s / (args.cases - half) / (60 / TARGET_PER_MIN), 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()

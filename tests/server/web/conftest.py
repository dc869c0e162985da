"""Fixtures for the console's browser tests: one real server stack and one headless Chromium per module.

The browser is Debian's ``chromium`` (``scripts/install.sh --dev`` installs it) driven by
Playwright with ``executable_path``: no browser is ever downloaded. Without it the tests skip
and say so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: No GPU, no sandbox (containers), and none of Chromium's own calls home: the request log must
#: hold only the server's URLs.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed; `scripts/install.sh --dev` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()

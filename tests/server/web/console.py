"""Driving the console in a browser: sign in, read what the page shows, and record every request
and every console message so a test can assert the page stayed on its own server and clean."""

from __future__ import annotations

from typing import Any

from tests.server.web.stack import PASSWORD, Stack


class Console:
    """One browser context (its own cookies) on the stack's console."""

    def __init__(
        self, browser: Any, stack: Stack, width: int = 1366, height: int = 768, timezone_id: str | None = None
    ) -> None:
        self.stack = stack
        # timezone_id: the dispatcher's clock (an IANA zone); None keeps the machine's.
        options: dict[str, Any] = {"viewport": {"width": width, "height": height}}
        if timezone_id is not None:
            options["timezone_id"] = timezone_id
        self.context = browser.new_context(**options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def open(self) -> None:
        self.page.goto(self.stack.url + "/")

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        """Type the credentials and press Enter, as a person would."""
        self.open()
        self.page.wait_for_selector("#signin-user", state="visible")
        self.page.fill("#signin-user", username)
        self.page.fill("#signin-password", password)
        self.page.press("#signin-password", "Enter")
        self.page.wait_for_selector("#app", state="visible")
        self.page.wait_for_selector("#live.on")  # the live stream is up before the list loads
        self.page.wait_for_selector("#case-title")

    def title(self) -> str:
        return str(self.page.inner_text("#case-title"))

    def case_id(self) -> int:
        return int(self.title().split()[0].lstrip("#"))

    def wait_for_case(self, case_id: int) -> None:
        """Until the case view shows ``case_id``."""
        self.page.wait_for_function(
            "id => (document.querySelector('#case-title') || {}).textContent?.startsWith('#' + id + ' ')",
            arg=case_id,
        )

    def press(self, *keys: str) -> None:
        for key in keys:
            self.page.keyboard.press(key)

    def foreign_requests(self) -> list[str]:
        own = self.stack.url + "/"
        return [url for url in self.requests if not (url.startswith(own) or url.startswith("data:"))]

    def close(self) -> None:
        self.context.close()

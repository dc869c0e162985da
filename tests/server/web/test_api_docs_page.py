"""``/docs`` works on an intranet without internet access: Swagger UI comes from the server's own
files, and the page, opened in a real headless Chromium, shows the API while asking no other host
for anything."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from server.app import create_app
from server.settings import ServerSettings
from tests.server.api.live_server import serve


def make_app(tmp_path: Path) -> FastAPI:
    # /docs reads no table: an empty SQLite file is enough.
    return create_app(
        ServerSettings(database_url=f"sqlite:///{tmp_path / 'sw.db'}", evidence_dir=str(tmp_path / "ev"))
    )


def test_the_docs_page_and_its_files_come_from_this_server(tmp_path: Path) -> None:
    with TestClient(make_app(tmp_path)) as client:
        page = client.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "http://" not in page.text and "https://" not in page.text and "//" not in page.text
        links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
        assert len(links) == 3 and all(link.startswith("/") for link in links), links
        for link in links:
            asset = client.get(link)
            assert asset.status_code == 200 and len(asset.content) > 100, link
        # The browser itself refuses anything from elsewhere, and runs only the page's own script.
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
        assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'; ", policy), policy
        assert '"validatorUrl": null' in page.text  # no badge fetched from validator.swagger.io
        assert client.get("/redoc").status_code == 404  # ReDoc would load from a CDN


@pytest.mark.browser
def test_the_docs_page_shows_the_api_without_other_hosts(browser: Any, tmp_path: Path) -> None:
    app = make_app(tmp_path)
    with serve(app) as port:
        own = f"http://127.0.0.1:{port}/"
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: errors.append(f"page error: {error}"))
            page.goto(own + "docs")
            page.wait_for_selector(".swagger-ui .info .title")
            assert "StreetWatch" in page.inner_text(".swagger-ui .info .title")
            page.wait_for_selector(".opblock-summary-path[data-path='/api/v1/cases']")
            spec = app.openapi()
            operations = sum(len(methods) for methods in spec["paths"].values())
            page.wait_for_function(f"document.querySelectorAll('.opblock').length >= {operations}")
            assert page.locator(".opblock").count() == operations  # every operation is listed
            foreign = [url for url in requests if not (url.startswith(own) or url.startswith("data:"))]
            assert foreign == [] and errors == []
            assert own + "openapi.json" in requests
        finally:
            context.close()

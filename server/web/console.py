"""Serve the console: ``/`` redirects to ``/console/``, the page's files, its API routes.

The page is static files from ``server/web/static`` (plain JavaScript modules and CSS, no build
step). Each file is answered with a Content-Security-Policy that allows only this server
(and the configured tile server for map images), so a page that tried to load anything from
elsewhere would be stopped by the browser itself.
"""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from server.api.links import API_PREFIX
from server.settings import ConsoleSettings
from server.web import config, live, session

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONSOLE_PATH = "/console"


class ConsoleFiles(StaticFiles):
    """Static files with the console's security headers; revalidated so an upgrade shows at once."""

    def __init__(self, policy: str) -> None:
        super().__init__(directory=STATIC_DIR, html=True)
        self._policy = policy

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = self._policy
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-cache"
        return response


def content_security_policy(settings: ConsoleSettings) -> str:
    images = "'self' data: blob:"
    if settings.tile_url:
        parts = urlsplit(settings.tile_url.replace("{", "").replace("}", ""))
        if parts.scheme and parts.netloc:
            images += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src {images}; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def install(app: FastAPI) -> None:
    """Add the console's routes and files to ``app`` (its settings are in ``app.state``)."""
    app.state.live_stopping = threading.Event()  # set when the server stops: streams end
    api = APIRouter(prefix=API_PREFIX)
    for module in (session, live, config):
        api.include_router(module.router)
    app.include_router(api)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(CONSOLE_PATH + "/", status_code=307)

    policy = content_security_policy(app.state.settings.console)
    app.mount(CONSOLE_PATH, ConsoleFiles(policy), name="console")

"""``/docs``: the OpenAPI page (Swagger UI) from files shipped with the server, never from a CDN.

FastAPI's own page loads Swagger UI from a CDN and its icon from FastAPI's site, so on a city
intranet without internet access it stays blank. The two files it needs (``swagger_ui/``: npm's
swagger-ui-dist, Apache-2.0, see its README.md) are served from ``/docs/static`` instead, the
validator badge (which would send the API description to validator.swagger.io) is off, and the
page's Content-Security-Policy lets the browser load nothing from anywhere else. ReDoc
(``/redoc``) would load from a CDN as well and is not served.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

SWAGGER_UI_DIR = Path(__file__).resolve().parent / "swagger_ui"
DOCS_PATH = "/docs"
ASSETS_PATH = DOCS_PATH + "/static"
#: The console's icon: the page needs one, and FastAPI's default is on FastAPI's site.
FAVICON_URL = "/console/favicon.svg"


def docs_page(openapi_url: str, title: str) -> HTMLResponse:
    """The Swagger UI page for ``openapi_url`` with its files on this server and its security headers."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=title,
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=FAVICON_URL,
        swagger_ui_parameters={"validatorUrl": None},
    )
    body = bytes(page.body)
    response = HTMLResponse(body)
    response.headers["Content-Security-Policy"] = content_security_policy(body.decode("utf-8"))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def content_security_policy(html: str) -> str:
    """Only this server, plus the page's one inline script by its hash (FastAPI writes it)."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii") + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    # Swagger UI sets style attributes from JavaScript and draws icons as data: images.
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and its files; create ``app`` with ``docs_url=None, redoc_url=None``."""
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs() -> HTMLResponse:
        return docs_page(openapi_url, f"{app.title} API")

    app.mount(ASSETS_PATH, StaticFiles(directory=SWAGGER_UI_DIR), name="swagger-ui")

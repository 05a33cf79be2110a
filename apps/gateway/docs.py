"""The API's Swagger UI at /docs, served from the installed `swagger-ui-bundle-v2` package.

FastAPI's own /docs loads its script and stylesheet from a CDN, so a gateway without internet access (an
air-gapped deployment, a laptop on a train) showed a blank page. Here every asset comes from the gateway
itself, under /docs/assets/. ReDoc has no such package and is not offered.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def serve_docs_offline(app: FastAPI) -> None:
    """Mount the Swagger UI at /docs with its assets from the local package. The app must be made with
    `docs_url=None, redoc_url=None`, so that FastAPI adds no page of its own pointing at a CDN."""
    assets = Path(str(swagger_ui_path))
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

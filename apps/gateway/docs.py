"""The API's Swagger UI at /docs, served from the installed `swagger-ui-bundle-v2` package.

FastAPI's own /docs loads its script and stylesheet from a CDN, so a gateway without internet access (an
air-gapped deployment, a laptop on a train) showed a blank page. Here every asset comes from the gateway
itself, under /docs/assets/. ReDoc has no such package and is not offered.

Outside dev (BATON_DEV) a gateway with keys serves /docs and /openapi.json only to a caller with a key (any
scope); the assets are the Swagger UI's own files and stay open.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

if TYPE_CHECKING:
    from baton.apps.gateway.auth import Guard

DOCS_URL = "/docs"
OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def serve_docs_offline(app: FastAPI, guard: Guard | None = None) -> None:
    """Mount the Swagger UI at /docs with its assets from the local package, and the schema at /openapi.json,
    both behind `guard` when one is given. The app must be made with `docs_url=None, redoc_url=None,
    openapi_url=None`, so that FastAPI adds no page of its own pointing at a CDN and no unguarded schema."""
    assets = Path(str(swagger_ui_path))
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    openapi_url = OPENAPI_URL

    async def allowed(request: Request) -> None:
        if guard is not None and not guard.open:
            await guard.authenticate(request)

    @app.get(OPENAPI_URL, include_in_schema=False, dependencies=[Depends(allowed)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(DOCS_URL, include_in_schema=False, dependencies=[Depends(allowed)])
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

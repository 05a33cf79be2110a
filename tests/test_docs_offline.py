"""The gateway's /docs page works without internet: every asset it references is served by the gateway."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlparse

import httpx
from temporalio.client import Client

from baton.apps.gateway.app import create_app
from baton.settings import Settings
from tests.loopback import serving


async def test_docs_reference_only_local_assets_that_are_served(client: Client, settings: Settings) -> None:
    # In dev the page needs no key (outside dev it does: tests/test_auth.py).
    app = create_app(client, settings.model_copy(update={"gateway_api_key": "docs-key", "dev": True}))
    async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "SwaggerUIBundle(" in html
        referenced = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
        referenced += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)  # the OpenAPI document the page loads
        assert referenced, "the page references no asset"
        for url in referenced:
            assert urlparse(url).netloc == "", f"/docs loads {url} from another host"
        assert not re.search(r"https?://", html.replace(base, "")), "an absolute URL to another host"
        for url in referenced:
            asset = await http.get(urljoin(f"{base}/docs", url))
            assert asset.status_code == 200, url
            assert len(asset.content) > 100, url
        script = await http.get("/docs/assets/swagger-ui-bundle.js")
        assert "SwaggerUIBundle" in script.text and "javascript" in script.headers["content-type"]
        # The document the page renders: OpenAPI 3.1, which this Swagger UI (5.x) reads.
        document = (await http.get("/openapi.json")).json()
        assert document["openapi"].startswith("3.1") and "/v1/conversations/{conversation_id}/messages" in str(
            document["paths"]
        )
        assert (await http.get("/redoc")).status_code == 404  # ReDoc would load from a CDN: not offered

"""Headless Chromium (Debian's `chromium` and `chromium-driver` packages), driven over the W3C WebDriver protocol.

A few calls of the protocol over httpx: open a page, find an element, type, click, read the DOM, take a
screenshot. Asynchronous, so that a page served by a gateway running in the same event loop can load.
The browser is the system's: nothing is downloaded; a fresh profile each time, removed afterwards.
"""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx

CHROMIUM = Path("/usr/bin/chromium")
# Debian's /usr/bin/chromium is a launcher script; the driver is given the browser itself.
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference
INSTALL = "apt-get install -y chromium chromium-driver"


def missing() -> str | None:
    """Why headless Chromium cannot run here, or None when it can."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is not installed ({INSTALL})"
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WebDriverError(RuntimeError):
    pass


class Browser:
    """One WebDriver session."""

    def __init__(self, http: httpx.AsyncClient, session: str) -> None:
        self._http = http
        self._session = session

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self._http.request(method, f"/session/{self._session}{path}", json=body)
        value = response.json().get("value")
        if response.status_code >= 400:
            raise WebDriverError(f"{method} {path}: {value}")
        return value

    async def get(self, url: str) -> None:
        await self._call("POST", "/url", {"url": url})

    async def find(self, css: str) -> str | None:
        """The first element matching a CSS selector, or None."""
        try:
            found = await self._call("POST", "/element", {"using": "css selector", "value": css})
        except WebDriverError:
            return None
        return str(found[ELEMENT])

    async def type(self, element: str, text: str) -> None:
        await self._call("POST", f"/element/{element}/value", {"text": text})

    async def click(self, element: str) -> None:
        await self._call("POST", f"/element/{element}/click", {})

    async def source(self) -> str:
        return str(await self._call("GET", "/source"))

    async def text(self) -> str:
        """The page's visible text."""
        return str(await self.script("return document.body ? document.body.innerText : '';"))

    async def script(self, code: str, *args: Any) -> Any:
        return await self._call("POST", "/execute/sync", {"script": code, "args": list(args)})

    async def url(self) -> str:
        return str(await self._call("GET", "/url"))

    async def cookies(self) -> list[dict[str, Any]]:
        return list(await self._call("GET", "/cookie"))

    async def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode(await self._call("GET", "/screenshot"))

    async def full_page_screenshot(self) -> bytes:
        """The whole page as PNG: the window grown to the document's height first (at most 4000 px)."""
        height = await self.script("return Math.min(4000, document.documentElement.scrollHeight);")
        rect = await self._call("GET", "/window/rect")
        await self._call("POST", "/window/rect", {"width": rect["width"], "height": int(height) + 20})
        try:
            return await self.screenshot()
        finally:
            await self._call("POST", "/window/rect", {"width": rect["width"], "height": rect["height"]})

    async def wait_for(
        self,
        ready: Callable[[str], bool],
        timeout: float = 30.0,
        reload: str | None = None,
        every: float = 0.5,
        reload_every: float = 2.0,
    ) -> str:
        """The page's source once `ready(source)` holds, checked every `every` seconds; with `reload`, that URL
        is loaded again every `reload_every` seconds (long enough for a script-built page to render)."""
        deadline = time.monotonic() + timeout
        loaded = time.monotonic()
        while True:
            source = await self.source()
            if ready(source):
                return source
            now = time.monotonic()
            if now > deadline:
                raise TimeoutError(f"the page did not become ready in {timeout:g} s; it shows:\n{source[:3000]}")
            await asyncio.sleep(every)
            if reload is not None and now - loaded >= reload_every:
                await self.get(reload)
                loaded = time.monotonic()


@asynccontextmanager
async def headless_chromium(width: int = 1400, height: int = 1000) -> AsyncIterator[Browser]:
    """Chromium, headless, with a fresh profile, under chromedriver on a loopback port."""
    reason = missing()
    if reason is not None:
        raise RuntimeError(reason)
    port = _free_port()
    profile = Path(tempfile.mkdtemp(prefix="baton-chromium-"))
    driver = await asyncio.create_subprocess_exec(
        str(CHROMEDRIVER),
        f"--port={port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    binary = CHROMIUM_BINARY if CHROMIUM_BINARY.exists() else CHROMIUM
    arguments = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ]
    capabilities = {"browserName": "chrome", "goog:chromeOptions": {"binary": str(binary), "args": arguments}}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 20
            while True:
                with suppress(httpx.TransportError):
                    if (await http.get("/status")).json()["value"]["ready"]:
                        break
                if time.monotonic() > deadline or driver.returncode is not None:
                    raise RuntimeError("chromedriver did not start")
                await asyncio.sleep(0.1)
            created = await http.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
            if created.status_code >= 400:
                raise WebDriverError(f"cannot start Chromium: {created.json().get('value')}")
            session = created.json()["value"]["sessionId"]
            try:
                yield Browser(http, session)
            finally:
                with suppress(httpx.HTTPError):
                    await http.delete(f"/session/{session}")
    finally:
        if driver.returncode is None:
            driver.terminate()
            try:
                await asyncio.wait_for(driver.wait(), 10)
            except TimeoutError:
                driver.kill()
                await driver.wait()
        shutil.rmtree(profile, ignore_errors=True)


def blank_reason(png: bytes) -> str | None:
    """Why a screenshot looks blank (one colour, or almost only background), or None when it shows something."""
    from PIL import Image  # comes with matplotlib (the report extra, in dev)

    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.resize((image.width // 4 or 1, image.height // 4 or 1))
    colours = small.getcolors(maxcolors=1_000_000) or []
    if len(colours) < 8:
        return f"only {len(colours)} colours in a {image.width}x{image.height} screenshot"
    background = max(colours)[0]
    share = background / (small.width * small.height)
    if share > 0.995:
        return f"{share:.1%} of the screenshot is one colour"
    return None

"""`/ops`: a read-only page for support leads, served by the gateway behind its API key.

It shows the live queues (who waits, how long against the SLA, urgency and triggers), the conversations an
agent has, the surge and the declared incident, and this month's report figures with the chart. The page
changes nothing: no form on it but "log out".

Getting in (when the gateway has keys; without any the page is as open as /v1), with a key that has the
`operator` scope (an integration's key, or the bootstrap BATON_GATEWAY_API_KEY):
- a program sends the key as the `X-API-Key` header, as for /v1;
- a browser signs in at `/ops/login` with the key, and gets an HttpOnly, SameSite=Strict cookie scoped to
  /ops, valid for 12 hours. The cookie holds its issue time and the key's id, signed (HMAC) with the gateway's
  signing secret (BATON_GATEWAY_SIGNING_SECRET, else the bootstrap key), never the key itself: revoking the
  key, or changing the secret, signs its browsers out.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import importlib.util
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import HTMLResponse, RedirectResponse
from temporalio.client import Client

from baton.apps.gateway.auth import API_KEY_HEADER, BOOTSTRAP, Caller, Guard
from baton.apps.gateway.ops_board import read_board, read_month_report
from baton.apps.gateway.ops_page import login_page, ops_page
from baton.logging import get_logger
from baton.policies.loader import load_policy
from baton.policies.schema import Policy
from baton.settings import Settings

if TYPE_CHECKING:
    from baton.apps.report.build import Report

log = get_logger("baton.gateway")

NOT_AN_OPERATOR_KEY = "That is not the gateway's API key, or not one with the operator scope."
COOKIE = "baton_ops"
COOKIE_PATH = "/ops"
SESSION_SECONDS = 12 * 3600
CHART_URL = "/ops/chart.png"

# No script and nothing from elsewhere: the page is HTML, an inline style sheet and the chart from /ops.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_chart_lock = threading.Lock()  # pyplot keeps global state: one chart at a time


class OpsAccess:
    """/ops session cookies: `issued.key_id.signature`, signed with `secret`."""

    def __init__(self, secret: str | bytes) -> None:
        self._secret = secret.encode() if isinstance(secret, str) else secret

    def _signature(self, issued: int, key_id: str) -> str:
        return hmac.new(self._secret, f"baton-ops:{issued}:{key_id}".encode(), hashlib.sha256).hexdigest()

    def session_token(self, now: float | None = None, key_id: str = BOOTSTRAP) -> str:
        issued = int(now if now is not None else time.time())
        return f"{issued}.{key_id}.{self._signature(issued, key_id)}"

    def session_key(self, token: str | None, now: float | None = None) -> str | None:
        """The id of the key a valid, unexpired session was opened with; None for anything else."""
        parts = (token or "").split(".")
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1] or not parts[2]:
            return None
        issued, key_id, signature = int(parts[0]), parts[1], parts[2]
        age = (now if now is not None else time.time()) - issued
        if 0 <= age <= SESSION_SECONDS and hmac.compare_digest(signature, self._signature(issued, key_id)):
            return key_id
        return None

    def session_valid(self, token: str | None, now: float | None = None) -> bool:
        return self.session_key(token, now) is not None


class OpsGate:
    """Who may read /ops: an operator key as a header, or a session cookie of a key that still works."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.sessions = OpsAccess(guard.ring.session_secret)

    @property
    def open(self) -> bool:
        return self.guard.open

    async def operator(self, key: str) -> Caller | None:
        caller = await self.guard.ring.caller_for_key(key)
        return caller if caller is not None and "operator" in caller.scopes else None

    async def allows(self, request: Request) -> bool:
        if self.open:
            return True
        header = request.headers.get(API_KEY_HEADER)
        if header is not None:
            return await self.operator(header) is not None
        key_id = self.sessions.session_key(request.cookies.get(COOKIE))
        return key_id is not None and await self.guard.ring.is_active(key_id)


def _html(text: str, status_code: int = 200, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(text, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})})


def render_chart_png(report: Report) -> bytes:
    """The report's chart (apps/report/chart.py) as PNG bytes."""
    from baton.apps.report.chart import render_chart  # matplotlib: an extra, loaded on the first chart only

    with _chart_lock, tempfile.TemporaryDirectory(prefix="baton-ops-chart-") as folder:
        return render_chart(report, Path(folder) / "chart.png").read_bytes()


def router(client: Client, settings: Settings, guard: Guard | None = None) -> APIRouter:
    access = OpsGate(guard or Guard(settings))
    routes = APIRouter(prefix="/ops", tags=["operators"], include_in_schema=False)
    policy_cache: list[Policy] = []
    chart_available = importlib.util.find_spec("matplotlib") is not None

    def policy() -> Policy:
        if not policy_cache:
            policy_cache.append(load_policy(settings.policy))
        return policy_cache[0]

    @routes.get("", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        if not await access.allows(request):
            if API_KEY_HEADER.lower() in request.headers:
                refused = access.guard.refused(request)  # counted: wrong keys meet 429 here too
                return _html(login_page(NOT_AN_OPERATOR_KEY), refused.status_code, refused.headers)
            return RedirectResponse("/ops/login", status.HTTP_303_SEE_OTHER, headers=SECURITY_HEADERS)
        board, month = await asyncio.gather(
            read_board(client, settings, policy()), read_month_report(settings, datetime.now(UTC))
        )
        chart = f"{CHART_URL}?month={month.report.month}" if chart_available and month.report else None
        return _html(ops_page(board, month, chart, logout=not access.open))

    @routes.get("/chart.png")
    async def chart(request: Request) -> Response:
        if not await access.allows(request):
            return Response("sign in at /ops/login", status.HTTP_401_UNAUTHORIZED, media_type="text/plain")
        if not chart_available:
            return Response("the chart needs matplotlib: pip install 'baton[report]'", 404, media_type="text/plain")
        month = await read_month_report(settings, datetime.now(UTC))
        if month.report is None:
            return Response(month.problem or "no report", 503, media_type="text/plain")
        png = await asyncio.to_thread(render_chart_png, month.report)
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=60"})

    @routes.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request) -> Response:
        if await access.allows(request):
            return RedirectResponse("/ops", status.HTTP_303_SEE_OTHER)
        return _html(login_page())

    @routes.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        # A plain urlencoded form, read here: no multipart parser needed (the body limit applies as everywhere).
        try:
            fields = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=10)
        except ValueError:  # more fields than a sign-in form has
            return _html(login_page("Send the form's one field, key."), status.HTTP_400_BAD_REQUEST)
        key = (fields.get("key") or [""])[0]
        if access.open:
            return RedirectResponse("/ops", status.HTTP_303_SEE_OTHER)
        caller = await access.operator(key)
        if caller is None:
            log.warning("ops_login_refused")
            refused = access.guard.refused(request)  # counted: wrong keys meet 429 here too
            return _html(login_page(NOT_AN_OPERATOR_KEY), refused.status_code, refused.headers)
        response = RedirectResponse("/ops", status.HTTP_303_SEE_OTHER, headers=SECURITY_HEADERS)
        response.set_cookie(
            COOKIE,
            access.sessions.session_token(key_id=caller.key_id or BOOTSTRAP),
            max_age=SESSION_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    @routes.post("/logout")
    async def logout() -> Response:
        response = RedirectResponse("/ops/login", status.HTTP_303_SEE_OTHER, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")
        return response

    return routes

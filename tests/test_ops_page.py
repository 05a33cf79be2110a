"""The support leads' page, /ops: a real gateway on loopback, a real worker, the dev server (whose visibility
answers queries by search attribute, which the time-skipping server's does not), and Debian's headless Chromium.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from baton.apps.gateway import serve
from baton.apps.gateway.ops import COOKIE, OpsAccess
from baton.apps.gateway.ops_board import Board, MonthReport, QueueView, Waiting
from baton.apps.gateway.ops_page import ops_page
from baton.contract.messages import OperationsStatus
from baton.settings import Settings
from baton.worker.wiring import build_worker
from scripts.headless_chromium import Browser, blank_reason, headless_chromium, missing

KEY = "ops-test-key-0123456789"
HOSTILE_TIER = '<b id="tier-injected">vip</b>'
HOSTILE_INCIDENT = "Login outage <img id=incident-injected src=/x onerror=alert(1)>"


@asynccontextmanager
async def gateway(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[str]:
    """A worker and a gateway on a loopback port; yields the gateway's base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready, stop = asyncio.Event(), asyncio.Event()
    async with build_worker(env.client, settings):
        server = asyncio.create_task(serve(settings, env.client, ready, stop, sock=sock))
        started = asyncio.create_task(ready.wait())
        await asyncio.wait([server, started], timeout=15, return_when=asyncio.FIRST_COMPLETED)
        assert ready.is_set(), f"gateway did not start: {server.exception() if server.done() else 'timeout'}"
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            stop.set()
            await asyncio.wait_for(server, 10)
            sock.close()


@pytest.fixture
def ops_settings() -> Settings:
    return Settings(task_queue=f"test-ops-{uuid.uuid4().hex[:8]}", gateway_api_key=KEY)


def _message(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "customer_id": "cust-ops",
        "message": {"message_id": uuid.uuid4().hex, "role": "customer", "text": text},
        **extra,
    }


async def _escalate(api: httpx.AsyncClient, conversation: str, **extra: Any) -> dict[str, Any]:
    response = await api.post(
        f"/v1/conversations/{conversation}/messages", json=_message("I want to talk to a human", **extra)
    )
    assert response.status_code == 200, response.text
    decision = response.json()
    assert decision["action"] == "escalate", decision
    return decision


async def test_ops_is_behind_the_key(dev_env: WorkflowEnvironment, ops_settings: Settings) -> None:
    async with gateway(ops_settings, dev_env) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
        anonymous = await http.get("/ops")
        assert anonymous.status_code == 303 and anonymous.headers["location"] == "/ops/login"
        assert (await http.get("/ops", headers={"X-API-Key": "wrong"})).status_code == 401
        assert (await http.get("/ops/chart.png")).status_code == 401

        with_header = await http.get("/ops", headers={"X-API-Key": KEY})
        assert with_header.status_code == 200, with_header.text
        assert "Waiting for a person" in with_header.text
        assert "script-src" not in with_header.headers["content-security-policy"]  # no script allowed at all
        assert "default-src 'none'" in with_header.headers["content-security-policy"]
        assert "<script" not in with_header.text

        refused = await http.post("/ops/login", data={"key": "not-the-key"})
        assert refused.status_code == 401 and "not the gateway" in refused.text
        assert COOKIE not in refused.cookies

        stuffed = await http.post("/ops/login", data={f"f{i}": "x" for i in range(50)})
        assert stuffed.status_code == 400 and COOKIE not in stuffed.cookies

        signed_in = await http.post("/ops/login", data={"key": KEY})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/ops"
        cookie = signed_in.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ops" in cookie
        assert KEY not in cookie  # the cookie carries a signature, never the key
        assert (await http.get("/ops")).status_code == 200  # httpx sends the cookie back

        http.cookies.clear()
        http.cookies.set(COOKIE, OpsAccess("another-key").session_token())  # signed with another key
        assert (await http.get("/ops")).status_code == 303
        http.cookies.set(COOKIE, OpsAccess(KEY).session_token())
        assert (await http.get("/ops")).status_code == 200
        assert (await http.get("/v1/conversations/x")).status_code == 401  # the cookie opens /ops only

        signed_out = await http.post("/ops/logout")
        assert signed_out.status_code == 303 and 'baton_ops=""' in signed_out.headers["set-cookie"]


def test_a_session_expires_and_is_bound_to_the_key() -> None:
    access = OpsAccess(KEY)
    token = access.session_token(now=1_000_000)
    assert access.session_valid(token, now=1_000_000 + 3600)
    assert not access.session_valid(token, now=1_000_000 + 13 * 3600)  # older than 12 hours
    assert not access.session_valid(token, now=1_000_000 - 60)  # issued in the future
    assert not OpsAccess("rotated-key").session_valid(token, now=1_000_000)
    issued, key_id, signature = token.split(".")
    assert key_id == "bootstrap"
    assert not access.session_valid(f"{int(issued) + 1}.{key_id}.{signature}", now=1_000_000)
    assert not access.session_valid(f"{issued}.another-key-id.{signature}", now=1_000_000)  # bound to its key
    assert not access.session_valid("", now=1_000_000) and not access.session_valid("x.y.z", now=1_000_000)


@pytest.mark.skipif(missing() is not None, reason=f"headless Chromium: {missing()}")
async def test_ops_shows_a_scripted_escalation_in_chromium(
    dev_env: WorkflowEnvironment, ops_settings: Settings, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    waiting, taken, emailed = f"ops-wait-{run}", f"ops-agent-{run}", f"ops-email-{run}"
    async with (
        gateway(ops_settings, dev_env) as base,
        httpx.AsyncClient(base_url=base, timeout=30, headers={"X-API-Key": KEY}) as api,
    ):
        decision = await _escalate(api, waiting, customer={"tier": HOSTILE_TIER})
        await _escalate(api, taken)
        await _escalate(api, emailed, channel="email")  # answered by reply: in no live queue
        pickup = await api.post(f"/v1/conversations/{taken}/pickup", json={"agent_id": "agent-ada"})
        assert pickup.status_code == 200, pickup.text
        incident = await api.post("/v1/incidents", json={"description": HOSTILE_INCIDENT, "declared_by": "lead-1"})
        assert incident.status_code == 200, incident.text

        async with headless_chromium(width=1400, height=1000) as browser:
            await browser.get(f"{base}/ops")
            assert (await browser.url()).endswith("/ops/login")  # no key yet: the sign-in form
            key_field = await browser.find("input[name=key]")
            assert key_field is not None
            await browser.type(key_field, KEY)
            submit = await browser.find("button[type=submit]")
            assert submit is not None
            await browser.click(submit)
            session = await _cookie(browser, COOKIE)
            assert session["httpOnly"] is True

            row = f'tr[data-conversation="{waiting}"]'

            def shown(source: str) -> bool:  # the escalation's row, with its triggers once visibility has it
                return f'data-conversation="{waiting}"' in source and "explicit_human_request" in source

            await browser.wait_for(shown, timeout=30, reload=f"{base}/ops")
            cells = await browser.script(
                "const row = document.querySelector(arguments[0]);"
                "return {id: row.querySelector('.conversation').innerText,"
                " urgency: row.querySelector('.urgency').innerText,"
                " triggers: row.querySelector('.triggers').innerText,"
                " wait: row.querySelector('.wait').innerText, sla: row.querySelector('.sla').innerText,"
                " queue: row.closest('table').dataset.queue};",
                row,
            )
            assert cells["id"] == waiting
            assert cells["urgency"] == decision["urgency"] == "immediate"
            assert "explicit_human_request" in cells["triggers"]
            state = (await api.get(f"/v1/conversations/{waiting}")).json()
            assert cells["queue"] == state["escalation"]["queue"]
            assert "left" in cells["sla"] or "breached" in cells["sla"]

            await browser.wait_for(lambda source: f'data-conversation="{taken}"' in source, reload=f"{base}/ops")
            agent = await browser.script(
                "return document.querySelector(`#with-agent tr[data-conversation='${arguments[0]}'] .agent`)"
                ".innerText;",
                taken,
            )
            assert agent == "agent-ada"

            await browser.wait_for(lambda source: f'data-conversation="{emailed}"' in source, reload=f"{base}/ops")
            not_queued = await browser.script(
                "return [...document.querySelectorAll('#not-queued-table tr[data-conversation]')]"
                ".map(row => row.dataset.conversation);"
            )
            assert not_queued == [emailed]
            escalated_at = await browser.script(
                "return document.querySelector("
                "`#not-queued-table tr[data-conversation='${arguments[0]}'] td:nth-child(6)`).innerText;",
                emailed,
            )
            assert escalated_at.endswith(" UTC"), escalated_at  # from BatonWaitingSince
            queued = await browser.script(
                "return [...document.querySelectorAll('table.queue tr[data-conversation]')]"
                ".map(row => row.dataset.conversation);"
            )
            assert queued == [waiting]

            text = await browser.text()
            assert "Surge mode is on (incident)" in text
            assert HOSTILE_INCIDENT in text and HOSTILE_TIER in text  # shown as text...
            assert await browser.find("#incident-injected") is None  # ...never as markup
            assert await browser.find("#tier-injected") is None
            assert "This month" in text

            chart_loaded = await browser.script(
                "const img = document.querySelector('img.chart'); return img !== null && img.complete"
                " && img.naturalWidth > 0;"
            )
            assert chart_loaded, "the report chart did not load"

            png = await browser.full_page_screenshot()
            (tmp_path / "ops.png").write_bytes(png)
            assert png.startswith(b"\x89PNG")
            assert blank_reason(png) is None, blank_reason(png)
            # The row is on screen where the DOM says: its box lies inside the screenshot.
            box = await browser.script(
                "return document.querySelector(arguments[0]).getBoundingClientRect().toJSON();", row
            )
            assert box["height"] > 0 and box["width"] > 0


def test_a_wait_past_the_sla_reads_as_breached() -> None:
    now = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)

    def row(conversation: str, waited: float, urgency: str = "immediate") -> Waiting:
        return Waiting(
            conversation_id=conversation,
            position=1,
            urgency=urgency,
            waiting_since=now - timedelta(seconds=waited),
            wait_seconds=waited,
            sla_seconds=180.0,
            raised=1 if waited > 180 else 0,
            callback=False,
            listed=None,  # visibility has not caught up: the page says so rather than guessing
        )

    queue = QueueView("support", [row("late", 400), row("on-time", 60)])
    board = Board(now=now, queues=[queue, QueueView("billing", [])], operations=OperationsStatus())
    html = ops_page(board, MonthReport(None, "The store did not answer."), None, logout=True)
    assert queue.breached == 1 and queue.longest_wait_seconds == 400
    assert '<tr data-conversation="late" class="breached">' in html and "breached by 3 min 40 s" in html
    assert '<tr data-conversation="on-time" class="waiting">' in html and "2 min 00 s left" in html
    assert "1 past SLA" in html and "raised" in html
    assert "Nobody waiting in <code>billing</code>" in html
    assert "The store did not answer." in html  # the report's absence is said, the live part still shown


async def _cookie(browser: Browser, name: str, timeout: float = 15.0) -> dict[str, Any]:
    """The named cookie once the browser has it: a click on a form's submit button returns before the
    response that sets the cookie has been read, sooner or later depending on the machine's load."""
    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in await browser.cookies() if c["name"] == name]
        if found:
            return found[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {name} cookie {timeout:g} s after signing in; the page is at {await browser.url()}")
        await asyncio.sleep(0.1)

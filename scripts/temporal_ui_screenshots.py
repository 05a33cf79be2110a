"""Screenshots of the Temporal UI's workflow list under the saved-view queries of docs/operators.md.

    python -m scripts.temporal_ui_screenshots     # its own dev server and UI, worker and gateway
    python -m scripts.temporal_ui_screenshots --address 127.0.0.1:7233 --ui http://127.0.0.1:8233 \
        --gateway http://127.0.0.1:8080           # against `make dev` (its worker answers; key from the env)

It plays two conversations (one escalated and waiting, one escalated and picked up by an agent), opens the
UI's list at `/namespaces/default/workflows?query=...` for each saved view in headless Chromium, checks that
the list shows the conversations the query selects and not the other one, and writes one PNG per view
(default: docs/images/); then one of the gateway's /ops page once it lists the waiting conversation. Exits 1
when a page does not show what it should.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baton.apps import client as baton_client
from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationStart, CustomerFacts, MessageIn, PickupRequest
from baton.settings import Settings
from scripts.headless_chromium import Browser, blank_reason, headless_chromium

NAMESPACE = "default"
OUT = Path("docs/images")
AGENT = "agent-ada"


@dataclass(frozen=True)
class SavedView:
    name: str  # the PNG's name: temporal-ui-<name>.png
    title: str
    query: str
    shows_waiting: bool  # the waiting conversation is in the list
    shows_taken: bool  # the conversation with an agent is in the list


def saved_views(queue: str, cutoff: datetime) -> list[SavedView]:
    """The views docs/operators.md documents, with what each must list; `cutoff` is a time after both
    conversations escalated (the waiting-since view lists those waiting since before it)."""
    views = [
        SavedView("escalated", "Waiting for a person", f'{sa.PHASE.name}="escalated"', True, False),
        SavedView(
            "immediate",
            "Waiting, immediate urgency",
            f'{sa.PHASE.name}="escalated" AND {sa.URGENCY.name}="immediate"',
            True,
            False,
        ),
        SavedView(
            "queue",
            f"Waiting in queue {queue}",
            f'{sa.PHASE.name}="escalated" AND {sa.QUEUE.name}="{queue}"',
            True,
            False,
        ),
        SavedView(
            "trigger",
            "Escalated by an explicit request for a person",
            f'{sa.TRIGGERS.name}="explicit_human_request"',
            True,
            True,
        ),
        SavedView(
            "with-agent",
            f"With agent {AGENT}",
            f'{sa.PHASE.name}="with_agent" AND {sa.AGENT.name}="{AGENT}"',
            False,
            True,
        ),
    ]
    since = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    query = f'{sa.PHASE.name}="escalated" AND {sa.WAITING_SINCE.name} < "{since}"'
    views.append(SavedView("waiting-since", f"Waiting since before {since}", query, True, False))
    return views


# The UI keeps each browser's list columns in localStorage under this key (UI 2.x); Baton's search attributes
# as columns make the list read as a queue. In a browser: the list's "Configure columns" button does the same.
COLUMNS_STORAGE_KEY = "namespace-workflow-table-columns"


def baton_columns() -> list[dict[str, object]]:
    """What a lead reads first, then any other Baton search attribute, then the start time."""
    first = [sa.PHASE, sa.URGENCY, sa.QUEUE, sa.TRIGGERS, sa.AGENT, sa.SEGMENT, sa.TIER]
    rest = [key for key in sa.ALL if key not in first]
    names = ["Status", "Workflow ID", *(key.name for key in [*first, *rest]), "Start"]
    return [{"label": name, "pinned": name in ("Status", "Workflow ID")} for name in names]


async def show_baton_columns(browser: Browser, ui: str) -> None:
    """Baton's search attributes as the list's columns, in this browser's profile."""
    await browser.get(f"{ui.rstrip('/')}/namespaces/{NAMESPACE}/workflows")
    await browser.script(
        "window.localStorage.setItem(arguments[0], JSON.stringify(arguments[1]));",
        COLUMNS_STORAGE_KEY,
        {NAMESPACE: baton_columns()},
    )


def list_url(ui: str, query: str) -> str:
    return f"{ui.rstrip('/')}/namespaces/{NAMESPACE}/workflows?query={quote(query, safe='')}"


@dataclass(frozen=True)
class Played:
    waiting: str  # conversation ids
    taken: str
    queue: str
    at: datetime  # after both escalated


async def play(client: Client, task_queue: str) -> Played:
    """Two conversations: one waits for a person, the other is picked up by AGENT."""
    run = uuid.uuid4().hex[:6]
    waiting, taken = f"ui-waiting-{run}", f"ui-with-agent-{run}"
    for conversation in (waiting, taken):
        start = ConversationStart(
            conversation_id=conversation, customer_id=f"customer-{run}", customer=CustomerFacts(tier="pro")
        )
        message = MessageIn(message_id=f"{conversation}-1", role="customer", text="I want to talk to a human")
        decision = await baton_client.send_message(client, task_queue, start, message)
        if decision.action != "escalate":
            raise RuntimeError(f"{conversation}: expected an escalation, got {decision.action}")
    await baton_client.pickup(client, taken, PickupRequest(agent_id=AGENT))
    state = await baton_client.get_state(client, waiting)
    if state.escalation is None:
        raise RuntimeError(f"{waiting}: no escalation in its state")
    return Played(waiting, taken, state.escalation.queue, datetime.now(UTC) + timedelta(seconds=1))


async def capture(browser: Browser, ui: str, played: Played, out: Path, timeout: float = 60.0) -> list[Path]:
    """One screenshot per saved view, each checked to list what its query selects (and nothing of the other)."""
    out.mkdir(parents=True, exist_ok=True)
    await show_baton_columns(browser, ui)
    written = []
    for view in saved_views(played.queue, played.at):
        url = list_url(ui, view.query)
        expected = [c for c, on in ((played.waiting, view.shows_waiting), (played.taken, view.shows_taken)) if on]
        absent = [c for c, on in ((played.waiting, view.shows_waiting), (played.taken, view.shows_taken)) if not on]
        await browser.get(url)
        # Visibility is eventually consistent: reload until the list has caught up with the conversations.
        await browser.wait_for(
            lambda source, expected=expected: all(f"conversation-{c}" in source for c in expected),
            timeout=timeout,
            reload=url,
            reload_every=8.0,  # the UI is a single-page app: it needs a few seconds to boot and list
        )
        text = await browser.text()
        missing = [c for c in expected if f"conversation-{c}" not in text]
        shown = [c for c in absent if f"conversation-{c}" in text]
        if missing or shown:
            raise AssertionError(f"{view.name}: list misses {missing} or shows {shown}")
        if sa.URGENCY.name not in text:  # a newer UI may keep its columns elsewhere: the list still holds
            print(f"warning: {view.name}: the list shows no Baton columns", file=sys.stderr)
        png = await browser.screenshot()
        reason = blank_reason(png)
        if reason is not None:
            raise AssertionError(f"{view.name}: the screenshot looks blank: {reason}")
        path = out / f"temporal-ui-{view.name}.png"
        path.write_bytes(png)
        written.append(path)
    return written


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def dev_server_with_ui(temporal: str, attempts: int = 3) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """The dev server with its Web UI on a free loopback port; yields it and the UI's base URL.

    A port found free can be taken before the server binds it (other processes pick free ports too): the
    start is tried again on another port."""
    for attempt in range(1, attempts + 1):
        ui_port = _free_port()
        try:
            environment = await WorkflowEnvironment.start_local(
                dev_server_existing_path=temporal,
                search_attributes=list(sa.ALL),
                data_converter=pydantic_data_converter,
                ui=True,
                ui_port=ui_port,
                dev_server_extra_args=["--ui-ip", "127.0.0.1", "--ui-disable-news-fetch"],
                dev_server_startup_timeout=timedelta(seconds=60),  # a busy machine needs more than 5 s
            )
        except RuntimeError:
            if attempt == attempts:
                raise
            continue
        break
    async with environment:
        yield environment, f"http://127.0.0.1:{ui_port}"


async def capture_ops(browser: Browser, gateway: str, key: str | None, played: Played, out: Path) -> Path:
    """The gateway's /ops page (signed in with the key when it has one), once it lists the waiting conversation."""
    page = f"{gateway.rstrip('/')}/ops"
    await browser.get(page)
    if (await browser.url()).endswith("/ops/login"):
        field, submit = await browser.find("input[name=key]"), await browser.find("button[type=submit]")
        if field is None or submit is None or not key:
            raise AssertionError("/ops asks for the gateway's key: pass --key")
        await browser.type(field, key)
        await browser.click(submit)
    await browser.wait_for(
        lambda source: f'data-conversation="{played.waiting}"' in source and "explicit_human_request" in source,
        timeout=60,
        reload=page,
    )
    png = await browser.full_page_screenshot()
    reason = blank_reason(png)
    if reason is not None:
        raise AssertionError(f"/ops: the screenshot looks blank: {reason}")
    path = out / "ops.png"
    path.write_bytes(png)
    return path


@asynccontextmanager
async def gateway_on_loopback(settings: Settings, client: Client) -> AsyncIterator[str]:
    from baton.apps.gateway import serve

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(settings, client, ready, stop, sock=sock))
    await asyncio.wait([server, asyncio.create_task(ready.wait())], return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        raise RuntimeError(f"the gateway did not start: {server.exception()}")
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        await asyncio.wait_for(server, 10)
        sock.close()


async def run(args: argparse.Namespace) -> list[Path]:
    async with AsyncExitStack() as stack:
        if args.ui:
            from baton.worker.connection import connect

            settings = Settings()
            client = await connect(settings.model_copy(update={"temporal_address": args.address}))
            ui, gateway, key = args.ui, args.gateway, args.key or settings.gateway_api_key
        else:
            from baton.store.database import migrate
            from baton.worker.wiring import build_worker

            store = Path(tempfile.mkdtemp(prefix="baton-ui-store-")) / "baton.db"
            url = f"sqlite+aiosqlite:///{store}"
            migrate(url)
            temporal = str(Path(sys.executable).parent / "temporal")
            environment, ui = await stack.enter_async_context(dev_server_with_ui(temporal))
            client = environment.client
            key = secrets.token_urlsafe(16)
            settings = Settings(task_queue=f"ui-{uuid.uuid4().hex[:8]}", database_url=url, gateway_api_key=key)
            await stack.enter_async_context(build_worker(client, settings))
            gateway = await stack.enter_async_context(gateway_on_loopback(settings, client))
        played = await play(client, settings.task_queue)
        browser = await stack.enter_async_context(headless_chromium(width=1600, height=800))
        out = Path(args.out)
        written = await capture(browser, ui, played, out)
        if gateway:
            ops = await stack.enter_async_context(headless_chromium(width=1280, height=900))
            written.append(await capture_ops(ops, gateway, key, played, out))
        return written


def main(argv: list[str] | None = None) -> int:
    from baton.logging import configure_logging, configure_temporal_runtime

    configure_logging("console", "WARNING")  # the worker's routine logs would bury the result
    configure_temporal_runtime()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ui", help="the Web UI of a running stack (make dev: http://127.0.0.1:8233)")
    parser.add_argument("--address", default="127.0.0.1:7233", help="its Temporal address (with --ui)")
    parser.add_argument("--gateway", help="its gateway, for a screenshot of /ops (make dev: http://127.0.0.1:8080)")
    parser.add_argument("--key", help="the gateway's API key (default: BATON_GATEWAY_API_KEY)")
    parser.add_argument("--out", default=str(OUT), help="folder for the PNGs (default: docs/images)")
    args = parser.parse_args(argv)
    try:
        written = asyncio.run(run(args))
    except (AssertionError, TimeoutError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    code = main()
    # The Temporal client's native threads can abort interpreter finalization (as in baton.apps.cli).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

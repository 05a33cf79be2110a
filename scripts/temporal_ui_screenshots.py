"""Screenshots of the Temporal UI's workflow list under the saved-view queries of docs/operators.md.

    python -m scripts.temporal_ui_screenshots                      # its own dev server, UI and worker
    python -m scripts.temporal_ui_screenshots --address 127.0.0.1:7233 --ui http://127.0.0.1:8233
                                                                   # against `make dev` (its worker answers)

It plays two conversations (one escalated and waiting, one escalated and picked up by an agent), opens the
UI's list at `/namespaces/default/workflows?query=...` for each saved view in headless Chromium, checks that
the list shows the conversations the query selects and not the other one, and writes one PNG per view
(default: docs/images/). Exits 1 when a view does not show what it should.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
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


def saved_views(queue: str) -> list[SavedView]:
    """The views docs/operators.md documents, with what each must list."""
    return [
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
    return Played(waiting, taken, state.escalation.queue)


async def capture(browser: Browser, ui: str, played: Played, out: Path, timeout: float = 60.0) -> list[Path]:
    """One screenshot per saved view, each checked to list what its query selects (and nothing of the other)."""
    out.mkdir(parents=True, exist_ok=True)
    await show_baton_columns(browser, ui)
    written = []
    for view in saved_views(played.queue):
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
async def dev_server_with_ui(temporal: str) -> AsyncIterator[tuple[WorkflowEnvironment, str]]:
    """The dev server with its Web UI on a free loopback port; yields it and the UI's base URL."""
    ui_port = _free_port()
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal,
        search_attributes=list(sa.ALL),
        data_converter=pydantic_data_converter,
        ui=True,
        ui_port=ui_port,
        dev_server_extra_args=["--ui-ip", "127.0.0.1", "--ui-disable-news-fetch"],
    )
    async with environment:
        yield environment, f"http://127.0.0.1:{ui_port}"


async def run(args: argparse.Namespace) -> list[Path]:
    async with AsyncExitStack() as stack:
        if args.ui:
            from baton.worker.connection import connect

            settings = Settings()
            client = await connect(settings.model_copy(update={"temporal_address": args.address}))
            ui = args.ui
        else:
            from baton.store.database import migrate
            from baton.worker.wiring import build_worker

            store = Path(tempfile.mkdtemp(prefix="baton-ui-store-")) / "baton.db"
            url = f"sqlite+aiosqlite:///{store}"
            migrate(url)
            temporal = str(Path(sys.executable).parent / "temporal")
            environment, ui = await stack.enter_async_context(dev_server_with_ui(temporal))
            client = environment.client
            settings = Settings(task_queue=f"ui-{uuid.uuid4().hex[:8]}", database_url=url)
            await stack.enter_async_context(build_worker(client, settings))
        played = await play(client, settings.task_queue)
        browser = await stack.enter_async_context(headless_chromium(width=1600, height=800))
        return await capture(browser, ui, played, Path(args.out))


def main(argv: list[str] | None = None) -> int:
    from baton.logging import configure_logging, configure_temporal_runtime

    configure_logging("console", "WARNING")  # the worker's routine logs would bury the result
    configure_temporal_runtime()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ui", help="the Web UI of a running stack (make dev: http://127.0.0.1:8233)")
    parser.add_argument("--address", default="127.0.0.1:7233", help="its Temporal address (with --ui)")
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

"""What a support lead reads of a conversation in the Temporal UI: the static summary and details, handler
descriptions, the current details at each stage and the BatonWaitingSince search attribute. On a time-skipping
server of its own (it moves the clock to give the pickup and the resolution their times)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import close, handle, pickup, resolve, send_message
from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationStart, CustomerFacts, MessageIn, PickupRequest, ResolveRequest
from baton.settings import Settings
from baton.worker.wiring import build_worker
from tests.clock import skip_time
from tests.conftest import time_skipping_server


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as environment:
        yield environment


async def current_details(env: WorkflowEnvironment, conversation_id: str) -> str:
    metadata = await handle(env.client, conversation_id).query("__temporal_workflow_metadata")
    return metadata.current_details


async def test_a_support_lead_reads_each_stage(env: WorkflowEnvironment) -> None:
    client = env.client
    settings = Settings(task_queue=f"view-{uuid.uuid4().hex[:8]}", classifier="rules")
    start = ConversationStart(
        conversation_id=f"view-{uuid.uuid4().hex[:8]}",
        customer_id="cus_midmarket",
        customer=CustomerFacts(tier="mid_market", mrr=1800),
    )
    tq = settings.task_queue

    def say(message_id: str, text: str) -> MessageIn:
        return MessageIn(message_id=message_id, role="customer", text=text)

    async with build_worker(client, settings):
        await send_message(client, tq, start, say("m1", "Where do I find my invoices?"))
        h = handle(client, start.conversation_id)
        desc = await h.describe()
        assert (
            await desc.static_summary()
            == f"Support chat {start.conversation_id} with customer cus_midmarket, mid_market"
        )
        static = await desc.static_details()
        assert "Current details" in static and "BatonWaitingSince" in static
        assert "add_message" not in static and "query" not in static  # written for a support lead
        details = await current_details(env, start.conversation_id)
        assert details.startswith("**With the bot**") and "**Triggers:** none fired" in details

        # Handler descriptions, for whoever opens the workflow's page.
        metadata = await h.query("__temporal_workflow_metadata")
        described = {
            d.name: d.description
            for d in [*metadata.definition.update_definitions, *metadata.definition.signal_definitions,
                      *metadata.definition.query_definitions]
        }  # fmt: skip
        for name in ("add_message", "pickup", "resolve", "pickup_signal", "close", "state"):
            assert len(described.get(name) or "") > 30, name

        queued = await send_message(client, tq, start, say("m2", "this bot is useless, not helping at all"))
        assert queued.action == "escalate" and queued.urgency == "queued"
        attrs = (await h.describe()).typed_search_attributes
        waiting_since = attrs.get(sa.WAITING_SINCE)
        assert waiting_since is not None and attrs.get(sa.PHASE) == "escalated"

        # A later request for a person raises the urgency: the lead sees it, and the trigger that did it.
        await skip_time(env, timedelta(seconds=30))
        later = await send_message(client, tq, start, say("m3", "I want to talk to a human now"))
        assert later.action == "human" and later.urgency == "immediate"
        details = await current_details(env, start.conversation_id)
        assert details.startswith("**Waiting for a person**")
        assert "**Urgency:** immediate (raised from queued)" in details
        assert "`bot_not_helping`" in details and "`explicit_human_request`" in details
        assert "`explicit_human_request` (" in details and "*after the escalation*" in details
        assert "**Waiting** since" in details and "position" in details
        assert (await h.describe()).typed_search_attributes.get(sa.WAITING_SINCE) == waiting_since

        await skip_time(env, timedelta(seconds=90))
        await pickup(client, start.conversation_id, PickupRequest(agent_id="alice", agent_name="Alice"))
        details = await current_details(env, start.conversation_id)
        assert (
            details.startswith("**With an agent**") and "**Agent:** `alice` (Alice), picked up after 2 min" in details
        )
        picked = (await h.describe()).typed_search_attributes
        assert picked.get(sa.PHASE) == "with_agent" and picked.get(sa.AGENT) == "alice"
        assert picked.get(sa.WAITING_SINCE) == waiting_since  # when the escalation began, kept for the record

        await skip_time(env, timedelta(minutes=10))
        await resolve(client, start.conversation_id, ResolveRequest(agent_id="alice", necessary=False, csat=4))
        details = await current_details(env, start.conversation_id)
        assert details.startswith("**Resolved by an agent**")
        assert "disposition: the bot could have handled it; CSAT 4" in details
        assert "time to pickup 2 min; time to resolve 12 min" in details
        assert "`explicit_human_request`" in details and "**Urgency:** immediate" in details
        assert "Where do I find" not in details and "useless" not in details  # never the customer's words


# --- the saved views of docs/operators.md, on the dev server (it has visibility) ---------------------------

DOC = Path(__file__).resolve().parents[1] / "docs" / "operators.md"
EXAMPLE_TIME = '"2026-11-30T10:00:00Z"'  # the doc's example cut-off; the test puts a time after its conversations


def documented_views() -> dict[str, str]:
    section = DOC.read_text().split("## Saved views", 1)[1]
    return dict(re.findall(r"^\| ([^|`]+?) \| `([^`]+)` \|$", section, flags=re.MULTILINE))


async def test_the_documented_saved_views_select_what_they_say(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    settings = Settings(task_queue=f"views-{uuid.uuid4().hex[:8]}", classifier="rules")
    tq, prefix = settings.task_queue, f"v{uuid.uuid4().hex[:6]}"
    names: dict[str, str] = {}  # workflow id -> name in this test

    def conversation(name: str, tier: str) -> ConversationStart:
        start = ConversationStart(
            conversation_id=f"{prefix}-{name}", customer_id=f"{prefix}-cus-{name}", customer=CustomerFacts(tier=tier)
        )
        names[f"conversation-{start.conversation_id}"] = name
        return start

    async def say(start: ConversationStart, text: str) -> str:
        message = MessageIn(message_id=uuid.uuid4().hex[:8], role="customer", text=text)
        return (await send_message(client, tq, start, message)).action

    async with build_worker(client, settings):
        waiting_vip, waiting_billing = conversation("w1", "enterprise"), conversation("w2", "mid_market")
        taken, with_bot, closed = conversation("t", "mid_market"), conversation("b", "smb"), conversation("c", "smb")
        assert await say(waiting_vip, "I want to talk to a human") == "escalate"
        assert await say(waiting_billing, "I was charged twice and want a refund") == "escalate"
        assert await say(taken, "get me a human please") == "escalate"
        await pickup(client, taken.conversation_id, PickupRequest(agent_id="agent-ada"))
        assert await say(with_bot, "How do I add a teammate?") == "continue"
        assert await say(closed, "How do I export reports?") == "continue"
        await close(client, closed.conversation_id, reason="resolved")
        await handle(client, closed.conversation_id).result()
        cutoff = datetime.now(UTC) + timedelta(seconds=1)

        expected = {
            "Waiting for a person": {"w1", "w2"},
            "Waiting, immediate urgency": {"w1"},
            "Waiting in one team's queue": {"w2"},
            "Waiting since before a time (over the SLA)": {"w1", "w2"},
            "High-value customers waiting": {"w1"},
            "One agent's conversations": {"t"},
            "Escalated by an explicit request for a person": {"w1", "t"},
            "Legal threats this week": set(),
            "Open conversations still with the bot": {"b"},
            "Closed conversations (each says why in its current details, e.g. idle)": {"c"},
        }
        views = documented_views()
        assert set(views) == set(expected), "docs/operators.md and this test list different views"
        for view, query in views.items():
            query = query.replace(EXAMPLE_TIME, f'"{cutoff:%Y-%m-%dT%H:%M:%SZ}"')
            scoped = f'({query}) AND TaskQueue="{tq}"'
            for _ in range(100):  # visibility is eventually consistent
                found = {names[w.id] async for w in client.list_workflows(scoped) if w.id in names}
                if found == expected[view]:
                    break
                await asyncio.sleep(0.2)
            assert found == expected[view], f"{view}: {query}"

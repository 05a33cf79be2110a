"""Continue-as-new on the real dev server, with the suggestion threshold lowered."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from baton.binaries import temporal_cli
from baton.client import get_state, handle, send_message
from baton.messages import ConversationStart, MessageIn, Phase
from baton.settings import Settings
from worker.wiring import build_worker
from workflows import search_attributes as sa

SUGGEST_AT = 40  # history events


@pytest.fixture(scope="module")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        search_attributes=list(sa.ALL),
        data_converter=pydantic_data_converter,
        ui=False,
        dev_server_extra_args=["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_AT}"],
    )
    async with env:
        yield env


async def test_conversation_continues_as_new_carrying_its_state(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    settings = Settings(task_queue=f"can-{uuid.uuid4().hex[:8]}")
    start = ConversationStart(conversation_id=f"can-{uuid.uuid4().hex[:8]}", customer_id="cus_enterprise")
    topics = ["export", "invoices", "seats", "sso", "webhooks", "retention", "timezone", "audit", "api", "mobile"]
    async with build_worker(client, settings):
        first = await send_message(
            client, settings.task_queue, start, MessageIn(message_id="m0", role="customer", text="hello")
        )
        first_run = (await handle(client, start.conversation_id).describe()).run_id
        for i, topic in enumerate(topics, start=1):
            await send_message(
                client,
                settings.task_queue,
                start,
                MessageIn(message_id=f"b{i}", role="bot", text=f"About {topic}: see the docs page for {topic}."),
            )
            await send_message(
                client,
                settings.task_queue,
                start,
                MessageIn(message_id=f"m{i}", role="customer", text=f"Thanks. Next, what about {topic} settings?"),
            )
        escalate = await send_message(
            client, settings.task_queue, start, MessageIn(message_id="m-human", role="customer", text="get me a human")
        )
        assert escalate.action == "escalate"

        desc = await handle(client, start.conversation_id).describe()
        state = await get_state(client, start.conversation_id)
        assert desc.run_id != first_run, "the conversation never continued as new"
        assert state.runs > 1
        # Everything carried: the whole transcript, counters, context, and the escalation.
        assert len(state.transcript) == 1 + 2 * len(topics) + 1
        assert state.customer_messages == len(topics) + 2
        assert state.context is not None and state.context.facts.tier == "enterprise"
        assert state.phase == Phase.ESCALATED
        # Duplicates are recognised across runs.
        again = await send_message(
            client, settings.task_queue, start, MessageIn(message_id="m0", role="customer", text="hello")
        )
        assert again == first
        assert len((await get_state(client, start.conversation_id)).transcript) == len(state.transcript)
        # Search attributes survive the new run.
        attrs = (await handle(client, start.conversation_id).describe()).typed_search_attributes
        assert attrs.get(sa.PHASE) == "escalated" and attrs.get(sa.TIER) == "enterprise"

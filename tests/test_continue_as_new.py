"""Continue-as-new on the real dev server, with the suggestion threshold lowered."""

from __future__ import annotations

import uuid

from temporalio.testing import WorkflowEnvironment

from baton.apps.client import get_state, handle, send_message
from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationStart, MessageIn, Phase
from baton.settings import Settings
from baton.worker.wiring import build_worker
from tests.samples import PRODUCT_QUESTIONS


async def test_conversation_continues_as_new_carrying_its_state(dev_env: WorkflowEnvironment) -> None:
    client = dev_env.client
    settings = Settings(task_queue=f"can-{uuid.uuid4().hex[:8]}")
    start = ConversationStart(conversation_id=f"can-{uuid.uuid4().hex[:8]}", customer_id="cus_enterprise")
    topics = PRODUCT_QUESTIONS
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
                MessageIn(
                    message_id=f"b{i}",
                    role="bot",
                    text=f"Answer number {i}: {'abcdefghij'[i - 1] * 3} is covered in chapter {i}.",
                ),
            )
            await send_message(
                client,
                settings.task_queue,
                start,
                MessageIn(message_id=f"m{i}", role="customer", text=f"Thanks, that worked. {topic}"),
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
        assert len(state.transcript) == 1 + 2 * len(topics) + 2  # ... and the acknowledgement
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

"""Continue-as-new on the real dev server, with the suggestion threshold lowered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import get_state, handle, send_message
from baton.contract import search_attributes as sa
from baton.contract.ids import conversation_workflow_id
from baton.contract.messages import (
    ConversationStart,
    ConversationState,
    Decision,
    MessageIn,
    Phase,
    TranscriptEntry,
)
from baton.settings import Settings
from baton.worker.wiring import build_worker
from baton.workflows.conversation import decision
from bench.growth import run_histories
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


async def test_a_long_conversation_carries_its_first_and_latest_messages(
    dev_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lowered so that a test reaches it: what a new run carries of a long transcript.
    monkeypatch.setattr(decision, "CARRIED_MESSAGES", 6)
    client = dev_env.client
    settings = Settings(task_queue=f"can-long-{uuid.uuid4().hex[:8]}")
    start = ConversationStart(conversation_id=f"can-long-{uuid.uuid4().hex[:8]}", customer_id="cus_enterprise")
    async with build_worker(client, settings):
        first = MessageIn(message_id="m0", role="customer", text="Our invoices page shows the wrong currency")
        await send_message(client, settings.task_queue, start, first)
        for i in range(1, 21):
            role = "bot" if i % 2 else "customer"
            topic = PRODUCT_QUESTIONS[(i // 2) % len(PRODUCT_QUESTIONS)]  # ten different questions
            text = (
                f"Answer {i}: {'abcdefghijklmnopqrstuvwxyz'[i] * 3} is in chapter {i}."
                if role == "bot"
                else (f"Thanks, that worked. {topic}")
            )
            await send_message(client, settings.task_queue, start, MessageIn(message_id=f"x{i}", role=role, text=text))
        state = await get_state(client, start.conversation_id)
        assert state.runs > 1, "the conversation never continued as new"
        assert state.dropped_messages > 0
        # The first message (what the customer came with, and when) and the latest ones are there, in order.
        ids = [e.message_id for e in state.transcript]
        assert ids[0] == "m0" and ids[-1] == "x20"
        assert len(ids) + state.dropped_messages == 21
        assert ids[1:] == [f"x{i}" for i in range(21 - len(ids) + 1, 21)]
        assert state.customer_messages == 11  # counters are not trimmed
        # The conversation goes on deciding: a request for a person still escalates.
        human = MessageIn(message_id="h", role="customer", text="get me a human")
        assert (await send_message(client, settings.task_queue, start, human)).action == "escalate"


def test_a_short_state_is_carried_whole_and_a_long_one_within_its_bounds() -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    start = ConversationStart(conversation_id="c", customer_id="u")
    short = ConversationState(
        start=start, transcript=[TranscriptEntry(message_id="a", role="customer", text="hi", at=at)]
    )
    assert decision.carried(short) is short
    entries = [
        TranscriptEntry(message_id=f"m{i}", role="customer", text="x" * 2000, at=at + timedelta(seconds=i))
        for i in range(1000)
    ]
    decisions = {e.message_id: Decision(message_id=e.message_id, action="continue") for e in entries}
    long = ConversationState(start=start, transcript=entries, decisions=decisions, customer_messages=1000)
    kept = decision.carried(long)
    assert kept.transcript[0].message_id == "m0" and kept.transcript[-1].message_id == "m999"
    assert len(kept.transcript) <= decision.CARRIED_MESSAGES
    assert sum(len(e.text) for e in kept.transcript) <= decision.CARRIED_TEXT_CHARS  # long texts: bounded by size
    assert kept.dropped_messages == 1000 - len(kept.transcript)
    assert list(kept.decisions) == [f"m{i}" for i in range(1000 - decision.CARRIED_MESSAGES, 1000)]
    assert kept.customer_messages == 1000 and long.transcript == entries  # the running state is left as it was


async def test_every_run_of_a_long_conversation_stays_under_4096_events(
    env: WorkflowEnvironment, settings: Settings
) -> None:
    client = env.client
    start = ConversationStart(conversation_id=f"can-4096-{uuid.uuid4().hex[:8]}", customer_id="cus_enterprise")
    async with build_worker(client, settings):
        await send_message(client, settings.task_queue, start, MessageIn(message_id="m0", role="customer", text="hi"))
        for i in range(1, 851):  # about 4,250 events in all
            text = f"Answer {i}: the setting is under chapter {i}, section {i % 7}."
            await send_message(client, settings.task_queue, start, MessageIn(message_id=f"b{i}", role="bot", text=text))
        runs = await run_histories(client, conversation_workflow_id(start.conversation_id))
        assert len(runs) >= 2, "the conversation never continued as new"
        assert all(run["events"] < 4096 for run in runs), [run["events"] for run in runs]
        state = await get_state(client, start.conversation_id)
        assert state.runs == len(runs) and state.transcript[-1].message_id == "b850"

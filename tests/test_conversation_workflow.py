"""ConversationWorkflow on the time-skipping test server with a real worker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError

from baton.apps.client import ConversationClosedError, close, get_state, handle, send_message
from baton.contract import search_attributes as sa
from baton.contract.messages import ConversationStart, ConversationSummary, CustomerFacts, MessageIn, Phase

pytestmark = pytest.mark.usefixtures("worker")


def new_start(customer_id: str = "cus_midmarket", **facts: object) -> ConversationStart:
    return ConversationStart(
        conversation_id=f"t-{uuid.uuid4().hex[:10]}", customer_id=customer_id, customer=CustomerFacts(**facts)
    )


def msg(message_id: str, text: str, role: str = "customer") -> MessageIn:
    return MessageIn(message_id=message_id, role=role, text=text)


async def test_first_message_starts_and_later_messages_continue(client: Client, task_queue: str) -> None:
    start = new_start()
    first = await send_message(client, task_queue, start, msg("m1", "How do I add a teammate?"))
    assert first.action == "continue" and first.signals is not None and first.segment == "mid_market"
    await send_message(client, task_queue, start, msg("b1", "Open Settings > Members and click Invite.", role="bot"))
    second = await send_message(client, task_queue, start, msg("m2", "I want to talk to a human"))
    assert second.action == "escalate" and second.urgency == "immediate"
    assert [t.id for t in second.triggers] == ["explicit_human_request"]
    assert second.customer_text and second.phase == Phase.ESCALATED

    state = await get_state(client, start.conversation_id)
    # The acknowledgement is recorded as Baton's own message, right after the one that escalated.
    assert [(m.message_id, m.role) for m in state.transcript] == [
        ("m1", "customer"),
        ("b1", "bot"),
        ("m2", "customer"),
        ("m2:ack", "baton"),
    ]
    assert state.transcript[-1].text == second.customer_text
    assert state.phase == Phase.ESCALATED and state.escalation.urgency == "immediate"
    assert state.customer_messages == 2
    assert state.context is not None and state.context.source == "embedded" and state.context.facts.mrr == 1800
    assert [m.signals is not None for m in state.transcript] == [True, False, True, False]
    assert state.escalation.message_id == "m2"


async def test_backend_facts_override_crm(client: Client, task_queue: str) -> None:
    start = new_start("cus_midmarket", tier="enterprise", mrr=40000)
    decision = await send_message(client, task_queue, start, msg("m1", "hello"))
    assert decision.segment == "enterprise"
    state = await get_state(client, start.conversation_id)
    assert state.context.facts.tier == "enterprise" and state.context.facts.health == 70  # the rest from the CRM


async def test_duplicate_message_returns_original_decision(client: Client, task_queue: str) -> None:
    start = new_start()
    original = await send_message(client, task_queue, start, msg("m1", "How do I change my billing address?"))
    again = await send_message(client, task_queue, start, msg("m1", "something else entirely"))
    assert again == original
    state = await get_state(client, start.conversation_id)
    assert len(state.transcript) == 1 and state.customer_messages == 1


async def test_concurrent_messages_are_processed_once_each_in_order(client: Client, task_queue: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m0", "hi"))
    texts = [f"m{i}" for i in range(1, 6)]
    results = await asyncio.gather(
        *(send_message(client, task_queue, start, msg(mid, f"question about {mid}")) for mid in texts),
        send_message(client, task_queue, start, msg("m1", "duplicate of m1")),
    )
    assert results[0] == results[-1]
    state = await get_state(client, start.conversation_id)
    ids = [m.message_id for m in state.transcript]
    assert sorted(ids) == ["m0", *texts] and len(ids) == len(set(ids))
    assert state.customer_messages == 6


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (MessageIn(message_id="x", role="customer", text="   "), "text: must not be empty"),
        (MessageIn(message_id="x", role="customer", text="a" * 4001), "text: 4001 characters"),
        (MessageIn(message_id="x", role="robot", text="hi"), "role: must be one of customer, bot, agent"),
    ],
)
async def test_validator_rejects_bad_messages(client: Client, task_queue: str, message: MessageIn, field: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("ok", "hello"))
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send_message(client, task_queue, start, message)
    assert field in str(caught.value.cause)
    state = await get_state(client, start.conversation_id)
    assert [m.message_id for m in state.transcript] == ["ok"]
    # A rejected update writes nothing to history.
    history = await handle(client, start.conversation_id).fetch_history()
    rejected = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(rejected) == 1


async def test_after_escalation_the_bot_is_refused_and_humans_own_it(client: Client, task_queue: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m1", "I'm going to sue you"))
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send_message(client, task_queue, start, msg("b1", "Here is an article", role="bot"))
    assert "role: the bot may not reply while a human owns the conversation" in str(caught.value.cause)
    later = await send_message(client, task_queue, start, msg("m2", "hello?"))
    assert later.action == "human" and later.urgency == "immediate"
    assert "in line" in later.customer_text
    state = await get_state(client, start.conversation_id)
    assert "b1" not in [m.message_id for m in state.transcript]
    assert state.transcript[-1].message_id == "m2"  # recorded, not dropped


async def test_close_completes_and_rejects_later_messages(client: Client, task_queue: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m1", "please delete my personal data under GDPR"))
    await close(client, start.conversation_id, reason="customer left")
    summary = ConversationSummary.model_validate(await handle(client, start.conversation_id).result())
    assert summary.phase == Phase.CLOSED and summary.escalated and summary.urgency == "queued"
    assert summary.triggers == ["data_deletion_request"] and summary.closed_reason == "customer left"
    # A closed conversation is not restarted with an empty transcript by a late message.
    with pytest.raises(ConversationClosedError, match="is closed"):
        await send_message(client, task_queue, start, msg("m2", "hi again"))
    state = await get_state(client, start.conversation_id)
    assert [m.message_id for m in state.transcript] == ["m1", "m1:ack"]


async def test_policy_length_limit_applies_to_the_first_message(client: Client, task_queue: str) -> None:
    start = new_start()
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send_message(client, task_queue, start, msg("m1", "a" * 5000))
    assert "text: 5000 characters, more than the limit of 4000" in str(caught.value.cause)
    state = await get_state(client, start.conversation_id)
    assert state.transcript == []
    ok = await send_message(client, task_queue, start, msg("m2", "hello"))
    assert ok.action == "continue"


async def test_operator_view(client: Client, task_queue: str) -> None:
    start = new_start("cus_enterprise")
    await send_message(client, task_queue, start, msg("m1", "I'm going to sue you, this is the worst"))
    desc = await handle(client, start.conversation_id).describe()
    attrs = desc.typed_search_attributes
    assert attrs.get(sa.PHASE) == "escalated"
    assert attrs.get(sa.URGENCY) == "immediate"
    assert attrs.get(sa.TIER) == "enterprise"
    assert attrs.get(sa.SEGMENT) == "enterprise"
    assert "legal_threat" in (attrs.get(sa.TRIGGERS) or [])
    assert await desc.static_summary() == f"Support chat {start.conversation_id} with customer cus_enterprise"
    metadata = await handle(client, start.conversation_id).query("__temporal_workflow_metadata")
    details = metadata.current_details
    assert "escalated" in details.lower() and "legal_threat" in details
    # Never the customer's words in anything operators can filter on.
    assert all("sue" not in str(v) for v in (attrs.get(sa.PHASE), attrs.get(sa.TRIGGERS)))

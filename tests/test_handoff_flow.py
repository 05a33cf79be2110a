"""The handoff after an escalation, on the time-skipping server with a real worker and a real receiver.

Ladder times come from the default policy: immediate updates every 60 s, SLA at
180 s, widen at 300 s, page at 420 s.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import get_state, handle, send_message
from baton.contract.ids import queue_workflow_id
from baton.contract.messages import (
    ConversationStart,
    MessageIn,
    Phase,
    PickupRequest,
    PickupResult,
    QueueEntry,
    ResolveRequest,
)
from baton.settings import Settings
from baton.worker.wiring import build_worker
from baton.workflows.conversation import ConversationWorkflow
from baton.workflows.queue import QueueWorkflow
from tests.clock import skip_time
from tests.conftest import time_skipping_server
from tests.receiver import WebhookReceiver, eventually

SECRET = "receiver-secret"


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server of its own per test: these tests move the clock, and time is global to a server,
    so timers left by other tests' conversations (whose workers are gone) must not be on it."""
    async with time_skipping_server() as environment:
        yield environment


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secret=SECRET) as r:
        yield r


@pytest.fixture
def settings(task_queue: str, receiver: WebhookReceiver) -> Settings:
    return Settings(
        task_queue=task_queue,
        webhook_secret=SECRET,
        delivery_webhook_url=f"{receiver.url}/customer",
        helpdesk_webhook_url=f"{receiver.url}/helpdesk",
        oncall_webhook_url=f"{receiver.url}/oncall",
    )


def new_start(channel: str = "chat", customer_id: str = "cus_midmarket") -> ConversationStart:
    return ConversationStart(conversation_id=f"h-{uuid.uuid4().hex[:10]}", customer_id=customer_id, channel=channel)


def msg(message_id: str, text: str, role: str = "customer", agent_id: str | None = None) -> MessageIn:
    return MessageIn(message_id=message_id, role=role, text=text, agent_id=agent_id)


def kinds(receiver: WebhookReceiver) -> list[str]:
    return [r.body["kind"] for r in receiver.at("customer")]


async def queue_entries(client: Client, queue: str, task_queue: str) -> list[QueueEntry]:
    return await client.get_workflow_handle(queue_workflow_id(queue, task_queue)).query(
        QueueWorkflow.entries, result_type=list[QueueEntry]
    )


async def pickup(client: Client, start: ConversationStart, agent: str) -> PickupResult:
    return await handle(client, start.conversation_id).execute_update(
        ConversationWorkflow.pickup, PickupRequest(agent_id=agent, agent_name=agent.title()), result_type=PickupResult
    )


@pytest.mark.usefixtures("worker")
async def test_ladder_fires_at_policy_times_and_stops_at_pickup(
    env: WorkflowEnvironment, client: Client, task_queue: str, receiver: WebhookReceiver
) -> None:
    start = new_start()
    decision = await send_message(client, task_queue, start, msg("m1", "I'm talking to my lawyer about this"))
    # The acknowledgement is immediate: in the decision itself, with the reason and a real wait estimate.
    assert decision.action == "escalate" and decision.urgency == "immediate"
    assert (
        "so that the right person handles this" in decision.customer_text
        and "about 6 minutes" in decision.customer_text
    )
    [entry] = await queue_entries(client, "legal", task_queue)
    assert entry.conversation_id == start.conversation_id and entry.urgency == "immediate"

    await skip_time(env, 61)
    await eventually(lambda: kinds(receiver) == ["wait_update"], what="first wait update")
    await skip_time(env, 60)
    await eventually(lambda: kinds(receiver) == ["wait_update"] * 2, what="second wait update")
    assert "number 1 in line" in receiver.at("customer")[0].body["text"]
    await skip_time(env, 60)
    await eventually(lambda: kinds(receiver) == ["wait_update"] * 3 + ["sla_breached"], what="SLA breach")
    [raised] = await queue_entries(client, "legal", task_queue)
    assert raised.boost == 1
    assert receiver.at("oncall") == []

    await skip_time(env, 120)  # 300 s: routing widens to the general queue
    await eventually(lambda: kinds(receiver).count("wait_update") == 5, what="updates to 300 s")
    await eventually(lambda: len(asyncio.all_tasks()) > 0 and True)
    state = await get_state(client, start.conversation_id)
    assert state.escalation.widened and state.escalation.queue == "support"
    assert await queue_entries(client, "legal", task_queue) == []
    [moved] = await queue_entries(client, "support", task_queue)
    assert moved.enqueued_at == entry.enqueued_at  # it keeps its place in line

    await skip_time(env, 120)  # 420 s: page on-call
    await eventually(lambda: len(receiver.at("oncall")) == 1, what="page")
    page = receiver.at("oncall")[0].body
    assert page["action"] == "trigger" and page["severity"] == "critical"
    assert page["dedup_key"] == f"baton-conversation-{start.conversation_id}"

    result = await pickup(client, start, "alice")
    assert result.agent_id == "alice" and result.waited_seconds >= 420
    assert result.note.summary and result.note.source == "fallback"
    assert [m.message_id for m in result.transcript][:2] == ["m1", "m1:ack"]
    await eventually(lambda: len(receiver.at("oncall")) == 2, what="page resolve")
    assert receiver.at("oncall")[1].body["action"] == "resolve"
    await eventually(lambda: kinds(receiver)[-1] == "agent_joined", what="agent joined")
    assert await queue_entries(client, "support", task_queue) == []

    sent = len(kinds(receiver))
    await skip_time(env, 900)
    await asyncio.sleep(0.3)
    assert len(kinds(receiver)) == sent, "the ladder kept running after pickup"
    # Each message was shown once and never sent twice.
    assert len(receiver.receipts) == len(receiver.shown)
    state = await get_state(client, start.conversation_id)
    assert state.phase == Phase.WITH_AGENT and state.escalation.agent_id == "alice"
    assert [m.role for m in state.transcript].count("baton") == len(kinds(receiver)) + 1  # + the acknowledgement


@pytest.mark.usefixtures("worker")
async def test_two_agents_can_never_both_own_a_conversation(client: Client, task_queue: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m1", "get me a human"))
    results = await asyncio.gather(pickup(client, start, "alice"), pickup(client, start, "bob"), return_exceptions=True)
    winners = [r for r in results if isinstance(r, PickupResult)]
    losers = [r for r in results if isinstance(r, WorkflowUpdateFailedError)]
    assert len(winners) == 1 and len(losers) == 1
    assert "already belongs to agent" in str(losers[0].cause)
    # The same agent again is a retry, answered with the same handoff.
    again = await pickup(client, start, winners[0].agent_id)
    assert again.note == winners[0].note
    other = "bob" if winners[0].agent_id == "alice" else "alice"
    with pytest.raises(WorkflowUpdateFailedError, match="update failed"):
        await pickup(client, start, other)


@pytest.mark.usefixtures("worker")
async def test_pickup_is_refused_when_nobody_waits(client: Client, task_queue: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m1", "How do I add a teammate?"))
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await pickup(client, start, "alice")
    assert "phase: the conversation is not waiting for a human (phase bot)" in str(caught.value.cause)


@pytest.mark.usefixtures("worker")
async def test_agent_messages_resolve_and_handback(client: Client, task_queue: str, receiver: WebhookReceiver) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m1", "I want a refund for the double charge"))
    await pickup(client, start, "alice")
    reply = await send_message(client, task_queue, start, msg("a1", "Refunded, sorry!", role="agent", agent_id="alice"))
    assert reply.action == "human"
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await send_message(client, task_queue, start, msg("a2", "me too", role="agent", agent_id="bob"))
    assert "agent_id: the conversation belongs to agent alice" in str(caught.value.cause)
    customer = await send_message(client, task_queue, start, msg("m2", "thank you!"))
    assert customer.action == "human" and customer.customer_text is None  # the agent replies, not the bot
    await eventually(lambda: "agent" in kinds(receiver), what="agent message delivery")
    agent_delivery = next(r for r in receiver.at("customer") if r.body["kind"] == "agent")
    assert agent_delivery.body["text"] == "Refunded, sorry!" and agent_delivery.body["agent_id"] == "alice"

    with pytest.raises(WorkflowUpdateFailedError, match="update failed"):
        await handle(client, start.conversation_id).execute_update(
            ConversationWorkflow.resolve, ResolveRequest(agent_id="bob", necessary=True)
        )
    await handle(client, start.conversation_id).execute_update(
        ConversationWorkflow.resolve, ResolveRequest(agent_id="alice", necessary=True, csat=5, handback=True)
    )
    state = await get_state(client, start.conversation_id)
    assert state.phase == Phase.BOT and state.escalation is None
    [past] = state.past_escalations
    assert past.necessary is True and past.csat == 5 and past.handback and past.resolved_at is not None
    await eventually(lambda: kinds(receiver)[-1] == "handback", what="handback message")
    # Back with the bot: the bot may speak again and decisions are the bot's.
    await send_message(client, task_queue, start, msg("b1", "Anything else I can help with?", role="bot"))
    after = await send_message(client, task_queue, start, msg("m3", "How do I export reports?"))
    assert after.action == "continue" and after.phase == Phase.BOT


@pytest.mark.usefixtures("worker")
async def test_resolve_without_handback_then_customer_writes_again(client: Client, task_queue: str) -> None:
    start = new_start()
    await send_message(client, task_queue, start, msg("m1", "get me a human"))
    await pickup(client, start, "alice")
    await handle(client, start.conversation_id).execute_update(
        ConversationWorkflow.resolve, ResolveRequest(agent_id="alice", necessary=False, csat=3)
    )
    assert (await get_state(client, start.conversation_id)).phase == Phase.RESOLVED
    again = await send_message(client, task_queue, start, msg("m2", "one more question: where are invoices?"))
    assert again.action == "continue"
    state = await get_state(client, start.conversation_id)
    assert state.phase == Phase.BOT and state.past_escalations[0].necessary is False


@pytest.mark.usefixtures("worker")
async def test_email_escalation_posts_a_ticket_with_an_honest_reply_time(
    env: WorkflowEnvironment, client: Client, task_queue: str, receiver: WebhookReceiver
) -> None:
    start = new_start(channel="email")
    decision = await send_message(
        client, task_queue, start, msg("m1", "The export crashes with error 500 since yesterday. Get me a human.")
    )
    assert decision.action == "escalate" and "reply within about 1 hour" in decision.customer_text
    await eventually(lambda: len(receiver.at("helpdesk")) == 1, what="helpdesk ticket")
    ticket = receiver.at("helpdesk")[0].body
    assert ticket["priority"] == "urgent" and ticket["reply_within_seconds"] == 3600
    assert ticket["note"]["recommended_actions"] and ticket["note"]["technical"] is True
    assert ticket["note"]["bug_ticket"]["title"]
    assert ticket["transcript"][0]["text"].startswith("The export crashes")
    await skip_time(env, 3600)
    await asyncio.sleep(0.3)
    assert kinds(receiver) == []  # no live ladder on asynchronous channels


@pytest.mark.usefixtures("worker")
async def test_customer_messages_while_waiting_get_status_and_can_raise_urgency(
    client: Client, task_queue: str
) -> None:
    start = new_start()
    first = await send_message(client, task_queue, start, msg("m1", "I was charged twice and want a refund"))
    assert first.urgency == "queued"
    status = await send_message(client, task_queue, start, msg("m2", "hello??"))
    assert status.action == "human" and "number 1 in line" in status.customer_text
    raised = await send_message(client, task_queue, start, msg("m3", "I'm reporting you to the FTC"))
    assert raised.action == "human" and raised.urgency == "immediate"
    [entry] = await queue_entries(client, "billing", task_queue)
    assert entry.urgency == "immediate"


async def test_worker_restart_mid_ladder_loses_nothing_and_sends_nothing_twice(
    dev_env: WorkflowEnvironment, tmp_path: Path, receiver: WebhookReceiver
) -> None:
    """On the real dev server in real time: the worker stops mid-ladder, timers come due with nobody
    to run them, and a fresh worker (empty cache) carries on from history alone."""
    client = dev_env.client
    fast = tmp_path / "fast.yaml"
    fast.write_text(
        Path(os.environ["BATON_POLICY"])  # always open: the test runs in real time, at any hour
        .read_text()
        .replace(
            "immediate: {update_every: 60, sla: 180, widen_after: 300, page_after: 420}",
            "immediate: {update_every: 2, sla: 5, widen_after: 6, page_after: 7}",
        )
    )
    settings = Settings(
        task_queue=f"restart-{uuid.uuid4().hex[:8]}",
        policy=str(fast),
        webhook_secret=SECRET,
        delivery_webhook_url=f"{receiver.url}/customer",
        oncall_webhook_url=f"{receiver.url}/oncall",
        worker_shutdown_seconds=1,
    )
    start = new_start()
    async with build_worker(client, settings):
        await send_message(client, settings.task_queue, start, msg("m1", "I need to speak to a person now"))
        await eventually(lambda: kinds(receiver) == ["wait_update"], timeout=60, what="first update")
    await asyncio.sleep(3)  # the next update and the SLA come due while no worker runs
    assert kinds(receiver) == ["wait_update"]
    async with build_worker(client, settings):
        await eventually(lambda: len(receiver.at("oncall")) == 1, timeout=90, what="the page, after the restart")
        await pickup(client, start, "alice")
        await eventually(lambda: kinds(receiver)[-1:] == ["agent_joined"], timeout=60, what="agent joined")
        await asyncio.sleep(2.5)  # longer than update_every: nothing more may come
        state = await get_state(client, start.conversation_id)
    sent = kinds(receiver)
    updates = [r.key for r in receiver.at("customer") if r.body["kind"] == "wait_update"]
    assert updates == [f"{start.conversation_id}:wait-update:m1:{n}" for n in range(1, len(updates) + 1)]
    assert len(updates) == state.escalation.updates_sent >= 3
    assert sent.count("sla_breached") == 1 and sent[-1] == "agent_joined"
    assert [r.body["action"] for r in receiver.at("oncall")] == ["trigger", "resolve"]
    keys = [r.key for r in receiver.receipts]
    assert len(keys) == len(set(keys)), "a message was sent twice"

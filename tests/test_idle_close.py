"""Conversations close themselves when nobody writes, and the month's report counts every conversation that
started in it, open or closed. On a time-skipping server of their own (they move its clock by hours and days),
with a worker recording to a fresh store each, read back through `baton report`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from baton.apps.client import close, get_state, handle, pickup, resolve, send_message
from baton.apps.export import export_conversations
from baton.apps.report.months import Month
from baton.contract.ids import conversation_workflow_id
from baton.contract.messages import (
    ConversationStart,
    ConversationSummary,
    MessageIn,
    Phase,
    PickupRequest,
    ResolveRequest,
)
from baton.settings import Settings
from baton.store.database import create_engine, migrate_async, session_factory
from baton.store.models import Conversation
from baton.worker.wiring import build_worker
from tests.clock import skip_time
from tests.conftest import time_skipping_server
from tests.samples import PRODUCT_QUESTIONS

ROOT = Path(__file__).resolve().parents[1]
CHAT_IDLE = timedelta(minutes=30)  # policies/default.yaml: idle_close.default


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as environment:
        yield environment


@pytest.fixture
async def store(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}"
    await migrate_async(url)
    return url


@pytest.fixture
async def tq(env: WorkflowEnvironment, store: str) -> AsyncIterator[str]:
    settings = Settings(task_queue=f"idle-{uuid.uuid4().hex[:8]}", database_url=store, classifier="rules")
    async with build_worker(env.client, settings):
        yield settings.task_queue


def new_start(name: str, channel: str = "chat") -> ConversationStart:
    return ConversationStart(
        conversation_id=f"idle-{name}-{uuid.uuid4().hex[:6]}", customer_id=f"cus-{name}-{uuid.uuid4().hex[:6]}",
        channel=channel,
    )  # fmt: skip


def customer(message_id: str, text: str) -> MessageIn:
    return MessageIn(message_id=message_id, role="customer", text=text)


def bot(message_id: str, text: str) -> MessageIn:
    return MessageIn(message_id=message_id, role="bot", text=text)


async def status(env: WorkflowEnvironment, start: ConversationStart) -> WorkflowExecutionStatus | None:
    return (await handle(env.client, start.conversation_id).describe()).status


async def closed_summary(env: WorkflowEnvironment, start: ConversationStart) -> ConversationSummary:
    return await asyncio.wait_for(
        env.client.get_workflow_handle(
            conversation_workflow_id(start.conversation_id), result_type=ConversationSummary
        ).result(),
        timeout=30,
    )


async def row(url: str, conversation_id: str) -> Conversation | None:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            return await session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id))
    finally:
        await engine.dispose()


async def first_task_time(client: Client, conversation_id: str) -> datetime:
    """When the conversation's first workflow task started: the workflow's clock as its first message arrived,
    the time setup writes on the conversation's row (the SDK and the history round nanoseconds apart)."""
    latest = await handle(client, conversation_id).describe()
    first_run = client.get_workflow_handle(latest.id, run_id=latest.raw_info.first_run_id)
    async for event in first_run.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return event.event_time.ToDatetime(UTC)
    raise AssertionError("no workflow task in the history")


async def report(url: str, month: Month) -> dict:
    """`baton report`'s figures; in a thread, so that this loop's worker keeps working meanwhile."""
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "baton.apps.cli", "report", "--month", str(month), "--format", "json",
         "--database-url", url],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["overall"]


async def test_a_chat_left_idle_closes_itself_and_is_reported(env: WorkflowEnvironment, tq: str, store: str) -> None:
    client = env.client
    start = new_start("quiet")
    await send_message(client, tq, start, customer("m1", "How do I add a teammate?"))
    await send_message(client, tq, start, bot("b1", "Open Settings > Members and click Invite."))
    await skip_time(env, CHAT_IDLE - timedelta(minutes=5))
    # Every message restarts the idle time: 25 minutes after the first answer, the customer writes again.
    await send_message(client, tq, start, customer("m2", "And how do I remove one?"))
    await send_message(client, tq, start, bot("b2", "Open Settings > Members and click Remove."))
    await skip_time(env, CHAT_IDLE - timedelta(minutes=5))
    assert await status(env, start) == WorkflowExecutionStatus.RUNNING
    assert (await get_state(client, start.conversation_id)).phase == Phase.BOT
    await skip_time(env, timedelta(minutes=6))

    summary = await closed_summary(env, start)
    assert summary.closed_reason == "idle" and summary.phase == Phase.CLOSED and not summary.escalated
    state = await get_state(client, start.conversation_id)  # a closed conversation still answers its query
    recorded = await row(store, start.conversation_id)
    assert recorded is not None and recorded.closed_reason == "idle" and recorded.outcome == "abandoned"
    assert recorded.closed_at is not None and recorded.started_at <= state.transcript[0].at
    assert abs(recorded.started_at - await first_task_time(client, start.conversation_id)) < timedelta(milliseconds=1)
    # From the bot's last answer, to the second (the timer fires on time; the close is recorded just after).
    assert CHAT_IDLE <= recorded.closed_at - state.transcript[-1].at < CHAT_IDLE + timedelta(seconds=1)
    assert recorded.customer_messages == 2
    # Messages do not restart the idle timer: it runs on, and when it fires the loop waits out the rest, so
    # history gains no cancelled-and-started timer pair per message.
    events = [e async for e in handle(client, start.conversation_id).fetch_history_events()]
    assert not any(e.HasField("timer_canceled_event_attributes") for e in events)
    assert sum(e.HasField("timer_started_event_attributes") for e in events) == 2  # 30 min from b1, then the rest

    figures = await report(store, Month.containing(recorded.started_at))
    assert (figures["conversations"], figures["abandoned"], figures["escalated_conversations"]) == (1, 1, 0)


async def test_no_idle_close_while_a_person_is_awaited_or_has_it(env: WorkflowEnvironment, tq: str, store: str) -> None:
    """A support team expects a conversation never to vanish from the queue or from under an agent: the idle time
    counts only with the bot, and from the resolution."""
    client = env.client
    start = new_start("waiting")
    decision = await send_message(client, tq, start, customer("m1", "I want to talk to a human"))
    assert decision.action == "escalate"
    await skip_time(env, timedelta(hours=3))  # far past the SLA and the page: still waiting for a person
    assert await status(env, start) == WorkflowExecutionStatus.RUNNING
    assert (await get_state(client, start.conversation_id)).phase == Phase.ESCALATED

    await pickup(client, start.conversation_id, PickupRequest(agent_id="alice", agent_name="Alice"))
    await skip_time(env, timedelta(hours=3))  # the agent takes their time
    assert (await get_state(client, start.conversation_id)).phase == Phase.WITH_AGENT

    await resolve(client, start.conversation_id, ResolveRequest(agent_id="alice", necessary=True, csat=5))
    await skip_time(env, CHAT_IDLE - timedelta(minutes=1))
    assert (await get_state(client, start.conversation_id)).phase == Phase.RESOLVED
    await skip_time(env, timedelta(minutes=2))
    summary = await closed_summary(env, start)
    assert summary.closed_reason == "idle" and summary.escalated
    state = await get_state(client, start.conversation_id)
    recorded = await row(store, start.conversation_id)
    assert recorded is not None and recorded.outcome == "escalated" and recorded.closed_reason == "idle"
    assert state.escalation is not None and state.escalation.resolved_at is not None
    assert CHAT_IDLE <= recorded.closed_at - state.escalation.resolved_at < CHAT_IDLE + timedelta(seconds=1)


async def test_an_email_thread_stays_open_for_days(env: WorkflowEnvironment, tq: str, store: str) -> None:
    start = new_start("mail", channel="email")
    await send_message(env.client, tq, start, customer("m1", "How do I export my invoices?"))
    await skip_time(env, timedelta(days=2))
    assert await status(env, start) == WorkflowExecutionStatus.RUNNING
    await skip_time(env, timedelta(days=1, minutes=1))
    assert (await closed_summary(env, start)).closed_reason == "idle"


async def test_the_report_counts_open_conversations(env: WorkflowEnvironment, tq: str, store: str) -> None:
    """Nine conversations, five escalated, while most are still open: every one that started is counted."""
    client = env.client
    now = await env.get_current_time()
    if Month.containing(now + timedelta(hours=1)) != Month.containing(now):
        await skip_time(env, Month.containing(now).end - now + timedelta(minutes=1))
    starts = {name: new_start(name) for name in ("e1", "e2", "e3", "e4", "e5", "b1", "b2", "b3", "b4")}
    for name in ("e1", "e2", "e3", "e4", "e5"):
        decision = await send_message(client, tq, starts[name], customer("m1", "Can I speak to a person please?"))
        assert decision.action == "escalate"
    for name in ("b1", "b2", "b3", "b4"):
        assert (await send_message(client, tq, starts[name], customer("m1", "How do I reset my password?"))).action == (
            "continue"
        )
    # One escalation is picked up and resolved; one bot conversation is closed by the backend; the rest stay open.
    await pickup(client, starts["e1"].conversation_id, PickupRequest(agent_id="alice"))
    await resolve(client, starts["e1"].conversation_id, ResolveRequest(agent_id="alice", necessary=True))
    await close(client, starts["b1"].conversation_id, reason="resolved")
    await closed_summary(env, starts["b1"])

    month = Month.containing(await env.get_current_time())
    for _ in range(20):  # the rows are written in the background, just after each first message
        figures = await report(store, month)
        if figures["conversations"] == 9:
            break
        await asyncio.sleep(0.2)
    assert figures["conversations"] == 9 and figures["escalated_conversations"] == 5
    assert figures["escalation_rate"] == round(5 / 9, 4)
    running = [n for n, s in starts.items() if await status(env, s) == WorkflowExecutionStatus.RUNNING]
    assert sorted(running) == ["b2", "b3", "b4", "e1", "e2", "e3", "e4", "e5"]  # all but the one closed
    still_open = await row(store, starts["b2"].conversation_id)
    assert still_open is not None and still_open.outcome == "open" and still_open.closed_at is None
    assert still_open.segment == "mid_market"  # an open conversation is grouped by segment too


# --- on the dev server: across continue-as-new, then out through `baton export` ------------------------------


async def test_idle_close_after_continue_as_new_then_export(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """The deadline lives in the carried state: a conversation long enough to continue as new still closes
    the policy's idle time after its last message, and is exported as a finished conversation."""
    client = dev_env.client
    policy = tmp_path / "quick_idle.yaml"
    policy.write_text(Path(os.environ["BATON_POLICY"]).read_text().replace("  default: 1800", "  default: 3"))
    url = f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}"
    await migrate_async(url)
    settings = Settings(
        task_queue=f"idle-can-{uuid.uuid4().hex[:8]}", policy=str(policy), database_url=url, classifier="rules"
    )
    start = new_start("long")
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with build_worker(client, settings):
        for i, question in enumerate(PRODUCT_QUESTIONS, start=1):
            # Each question follows a thanks, and each answer differs: nothing here asks for a person.
            text = f"Thanks, that worked. {question}"
            decision = await send_message(client, settings.task_queue, start, customer(f"m{i}", text))
            assert decision.action == "continue"
            answer = f"Answer number {i}: {'abcdefghij'[i - 1] * 3} is covered in chapter {i}."
            await send_message(client, settings.task_queue, start, bot(f"b{i}", answer))
        summary = await closed_summary(dev_env, start)
        state = await get_state(client, start.conversation_id)
        assert summary.closed_reason == "idle" and state.runs > 1, "the conversation never continued as new"
        recorded = await row(url, start.conversation_id)
        assert recorded is not None and recorded.closed_reason == "idle" and recorded.closed_at is not None
        assert timedelta(seconds=3) <= recorded.closed_at - state.transcript[-1].at < timedelta(seconds=8)
        first_task = await first_task_time(client, start.conversation_id)
        assert abs(recorded.started_at - first_task) < timedelta(milliseconds=1)

        until = datetime.now(UTC) + timedelta(seconds=1)
        for _ in range(50):  # visibility is eventually consistent
            result = await export_conversations(client, since, until)
            lines = [line for line in result.lines if line["conversation_id"] == start.conversation_id]
            if lines:
                break
            await asyncio.sleep(0.2)
        [line] = lines
        assert len(line["messages"]) == 2 * len(PRODUCT_QUESTIONS)
        assert start.conversation_id not in [w.removeprefix("conversation-") for w in result.open_left_out]

"""The three situations that break escalation policies, end to end on the time-skipping server:
nobody on shift, a surge, and a customer who comes back. Plus segments that change mid-conversation."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from baton.apps import client as baton
from baton.contract.ids import customer_workflow_id, queue_workflow_id
from baton.contract.messages import (
    ConversationStart,
    CoolingStatus,
    CustomerFacts,
    Incident,
    MessageIn,
    PickupRequest,
    QueueEntry,
    ResolveRequest,
)
from baton.settings import Settings
from baton.worker.wiring import build_worker
from baton.workflows.customer import CustomerWorkflow
from baton.workflows.queue import QueueWorkflow
from tests.clock import skip_time
from tests.conftest import time_skipping_server
from tests.receiver import WebhookReceiver, eventually, until
from tests.samples import DISTINCT_QUESTIONS

SECRET = "edge-secret"


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A server of its own: these tests move the clock by weeks."""
    async with time_skipping_server() as environment:
        yield environment


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(secret=SECRET) as r:
        yield r


def make_settings(task_queue: str, receiver: WebhookReceiver, policy: str = "policies/default.yaml") -> Settings:
    return Settings(
        task_queue=task_queue,
        policy=policy,
        webhook_secret=SECRET,
        delivery_webhook_url=f"{receiver.url}/customer",
        helpdesk_webhook_url=f"{receiver.url}/helpdesk",
        oncall_webhook_url=f"{receiver.url}/oncall",
    )


def calendar_policy(folder: Path, holidays: list[date]) -> str:
    """The default policy's hours, kept in UTC so expectations need no zone arithmetic, with holidays chosen
    relative to today: these tests must pass in any month they run in."""
    text = Path("policies/default.yaml").read_text().replace("timezone: Europe/London", "timezone: UTC")
    text = text.replace(
        "holidays: [2026-12-25, 2026-12-28, 2027-01-01]", f"holidays: [{', '.join(map(str, holidays))}]"
    )
    path = folder / "calendar.yaml"
    path.write_text(text)
    return str(path)


def next_weekday(after: datetime, weekday: int) -> date:
    """The first date strictly after `after` (and at least a day away) falling on `weekday` (Monday is 0)."""
    day = after.date() + timedelta(days=2)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def spoken(day: date, at: str) -> str:
    return f"{day:%A} {day.day} {day:%B} at {at} UTC"


def start(customer_id: str = "cus_midmarket", **facts: object) -> ConversationStart:
    return ConversationStart(
        conversation_id=f"e-{uuid.uuid4().hex[:10]}", customer_id=customer_id, customer=CustomerFacts(**facts)
    )


def msg(message_id: str, text: str) -> MessageIn:
    return MessageIn(message_id=message_id, role="customer", text=text)


async def move_clock_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    assert moment > now, "the test server's clock only moves forward"
    await skip_time(env, moment - now)


async def queue_entries(client: Client, queue: str, task_queue: str) -> list[QueueEntry]:
    return await client.get_workflow_handle(queue_workflow_id(queue, task_queue)).query(
        QueueWorkflow.entries, result_type=list[QueueEntry]
    )


# --- after hours ----------------------------------------------------------------------------------


async def test_after_hours_across_a_holiday_and_a_weekend(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    client, tq = env.client, task_queue
    thursday = next_weekday(await env.get_current_time(), 3)
    friday, monday, tuesday = (thursday + timedelta(days=n) for n in (1, 4, 5))
    policy = calendar_policy(tmp_path, holidays=[friday, monday])
    async with build_worker(client, make_settings(tq, receiver, policy=policy)):
        # Thursday 19:00: closed; Friday and Monday are holidays, then the weekend between them.
        await move_clock_to(env, datetime.combine(thursday, time(19), UTC))
        conv = start()
        decision = await baton.send_message(client, tq, conv, msg("m1", "I want to talk to a person"))
        assert decision.action == "escalate" and decision.urgency == "immediate"
        # The next opening plus the immediate SLA (3 minutes).
        assert spoken(tuesday, "08:03") in decision.customer_text
        assert "priority ticket" in decision.customer_text

        await eventually(lambda: len(receiver.at("oncall")) == 1, what="the on-call page")
        assert receiver.at("oncall")[0].body["action"] == "trigger"
        await eventually(lambda: len(receiver.at("helpdesk")) == 1, what="the prioritised ticket")
        assert receiver.at("helpdesk")[0].body["priority"] == "urgent"

        # Writing again before the opening gets the status, not silence.
        again = await baton.send_message(client, tq, conv, msg("m2", "hello? anyone?"))
        assert again.action == "human" and spoken(tuesday, "08:03") in again.customer_text

        # Over the long weekend nothing is sent and nobody is queued.
        await move_clock_to(env, datetime.combine(monday, time(19), UTC))
        await asyncio.sleep(0.3)
        assert [r.body["kind"] for r in receiver.at("customer")] == []
        # At the opening the callback goes to the front of the queue, and the ladder starts from there.
        await move_clock_to(env, datetime.combine(tuesday, time(8, 0, 30), UTC))
        [entry] = await until(lambda: queue_entries(client, "support", tq), bool, what="the callback in the queue")
        assert entry.callback and entry.boost == 2
        await skip_time(env, 61)
        await eventually(lambda: [r.body["kind"] for r in receiver.at("customer")] == ["wait_update"], what="update")
        await baton.pickup(client, conv.conversation_id, PickupRequest(agent_id="alice"))
        await eventually(lambda: len(receiver.at("oncall")) == 2, what="the page resolved at pickup")
        assert receiver.at("oncall")[1].body["action"] == "resolve"


async def test_queued_escalation_after_hours_pages_nobody(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    saturday = next_weekday(await env.get_current_time(), 5)
    async with build_worker(env.client, make_settings(task_queue, receiver, calendar_policy(tmp_path, []))):
        await move_clock_to(env, datetime.combine(saturday, time(12), UTC))
        decision = await baton.send_message(
            env.client, task_queue, start(), msg("m1", "I was charged twice, I want a refund")
        )
        assert decision.urgency == "queued"
        # Monday 08:00 plus the queued SLA of 30 minutes.
        assert spoken(saturday + timedelta(days=2), "08:30") in decision.customer_text
        await eventually(lambda: len(receiver.at("helpdesk")) == 1, what="ticket")
        assert receiver.at("helpdesk")[0].body["priority"] == "normal"
        await asyncio.sleep(0.3)
        assert receiver.at("oncall") == []


async def test_enterprise_queue_is_staffed_at_weekends(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    saturday = next_weekday(await env.get_current_time(), 5)
    async with build_worker(env.client, make_settings(task_queue, receiver, calendar_policy(tmp_path, []))):
        await move_clock_to(env, datetime.combine(saturday, time(12), UTC))  # the priority team is on shift
        decision = await baton.send_message(
            env.client, task_queue, start("cus_enterprise"), msg("m1", "I need to speak to someone")
        )
        assert "Expected wait" in decision.customer_text
        [entry] = await queue_entries(env.client, "priority", task_queue)
        assert entry.urgency == "immediate"


# --- surge ----------------------------------------------------------------------------------------


async def test_declared_incident_keeps_incident_questions_with_the_bot(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver
) -> None:
    settings = make_settings(task_queue, receiver, policy=_always_open())
    client = env.client
    async with build_worker(client, settings):
        status = await baton.declare_incident(client, task_queue, Incident(description="Login outage in the EU"))
        assert status.surge and status.reason == "incident"
        general = await baton.send_message(
            client, task_queue, start(), msg("m1", "Is the service down? Nothing is loading for anyone")
        )
        assert general.action == "continue" and general.surge
        assert "Login outage in the EU" in general.customer_text
        account = await baton.send_message(
            client, task_queue, start(), msg("m1", "The outage double charged me, I want a refund")
        )
        assert account.action == "escalate" and not account.surge  # account-specific: still a person

        ended = await baton.end_incident(client, task_queue)
        assert not ended.surge
        await asyncio.sleep(1.1)  # the workers' one-second status cache
        after = await baton.send_message(
            client, task_queue, start(), msg("m1", "Is the service down? Nothing is loading, get me a human")
        )
        assert after.action == "escalate" and after.urgency == "immediate"


async def test_a_request_for_a_person_during_an_incident_reaches_a_person(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver
) -> None:
    """An incident's words do not deflect an explicit request for a person, and the Decision's phase is the
    workflow's phase, for the deflected question and the escalation alike."""
    client = env.client
    async with build_worker(client, make_settings(task_queue, receiver, policy=_always_open())):
        await baton.declare_incident(client, task_queue, Incident(description="CSV exports failing"))
        try:
            kept, person = start(), start()
            general = await baton.send_message(client, task_queue, kept, msg("m1", "Is the export down for everyone?"))
            assert general.action == "continue" and general.surge and not general.triggers
            assert general.phase == (await baton.get_state(client, kept.conversation_id)).phase == "bot"

            text = "The CSV export is not working for my account. I want to talk to a human."
            decision = await baton.send_message(client, task_queue, person, msg("m1", text))
            assert decision.action == "escalate" and decision.urgency == "immediate" and not decision.surge
            assert "explicit_human_request" in [t.id for t in decision.triggers]
            state = await baton.get_state(client, person.conversation_id)
            assert decision.phase == state.phase == "escalated"
            assert state.escalation is not None and state.escalation.surge  # escalated during the surge, said so
        finally:
            await baton.end_incident(client, task_queue)


async def test_surge_by_queue_depth_starts_and_ends_with_the_queue(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    policy = tmp_path / "small_team.yaml"
    policy.write_text(Path(_always_open()).read_text().replace("queue_depth: 25", "queue_depth: 2"))
    client = env.client
    async with build_worker(client, make_settings(task_queue, receiver, policy=str(policy))):
        waiting = [start(f"cus-{i}") for i in range(2)]
        for conv in waiting:
            await baton.send_message(client, task_queue, conv, msg("m1", "I want to speak to a person"))
        status = await until(
            lambda: baton.operations_status(client, task_queue), lambda s: s.waiting == 2, what="two waiting"
        )
        assert status.surge and status.reason == "queue_depth"
        await asyncio.sleep(1.1)
        kept = await baton.send_message(client, task_queue, start(), msg("m1", "is anyone else seeing an outage?"))
        assert kept.surge and kept.action == "continue"
        # Agents take the queue: the surge ends by itself.
        for conv in waiting:
            await baton.pickup(client, conv.conversation_id, PickupRequest(agent_id="alice"))
        drained = await until(
            lambda: baton.operations_status(client, task_queue), lambda s: s.waiting == 0, what="queue drained"
        )
        assert not drained.surge


def _always_open() -> str:
    import os

    return os.environ["BATON_POLICY"]


# --- escalation loops -------------------------------------------------------------------------------


async def test_returning_customer_goes_back_to_the_same_agent_then_normal_after_the_window(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver
) -> None:
    client = env.client
    async with build_worker(client, make_settings(task_queue, receiver, policy=_always_open())):
        first = start("cus_smb")
        await baton.send_message(client, task_queue, first, msg("m1", "I was double charged, refund please"))
        await baton.pickup(client, first.conversation_id, PickupRequest(agent_id="alice", agent_name="Alice"))
        await baton.resolve(client, first.conversation_id, ResolveRequest(agent_id="alice", necessary=True, csat=4))
        await baton.close(client, first.conversation_id)
        cooling = customer_workflow_id("cus_smb", task_queue)

        async def cooling_status() -> CoolingStatus:
            try:
                return await client.get_workflow_handle(cooling).query(
                    CustomerWorkflow.status, result_type=CoolingStatus
                )
            except RPCError:  # not started yet: the resolution is reported in the background
                return CoolingStatus(customer_id="cus_smb")

        for _ in range(100):
            try:
                if (await cooling_status()).last_agent_id == "alice":
                    break
            except Exception:
                pass
            await asyncio.sleep(0.05)
        assert (await cooling_status()).escalations_in_window == 1

        # Back the next day with a new conversation: sensitive handling, same team and agent.
        await skip_time(env, timedelta(days=1))
        second = start("cus_smb")
        decision = await baton.send_message(client, task_queue, second, msg("m1", "get me a human"))
        assert decision.action == "escalate"
        [entry] = await queue_entries(client, "billing", task_queue)
        assert entry.conversation_id == second.conversation_id and entry.preferred_agent_id == "alice"
        state = await baton.get_state(client, second.conversation_id)
        assert state.context.cooling.active(state.escalation.at) and state.escalation.returning
        result = await baton.pickup(client, second.conversation_id, PickupRequest(agent_id="alice"))
        assert result.note.summary.startswith("Returning customer: escalated on ")
        assert "handled by alice" in result.note.summary
        # A second escalation inside one window pages a team lead.
        await eventually(lambda: any(r.body["severity"] == "warning" for r in receiver.at("oncall")), what="lead")
        await baton.resolve(client, second.conversation_id, ResolveRequest(agent_id="alice", necessary=True))
        await baton.close(client, second.conversation_id)

        # After the 48-hour window: normal handling again.
        await skip_time(env, timedelta(hours=49))
        await asyncio.sleep(0.3)
        third = start("cus_smb")
        decision = await baton.send_message(client, task_queue, third, msg("m1", "get me a human"))
        state = await baton.get_state(client, third.conversation_id)
        assert not state.escalation.returning and state.escalation.queue == "support"


# --- segments in time -------------------------------------------------------------------------------


async def test_a_renewal_window_opening_mid_conversation_changes_the_decision(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver, tmp_path: Path
) -> None:
    client = env.client
    now = await env.get_current_time()
    # Renewal 61 days out: just outside the 60-day window now, inside it in two days.
    renewal = (now + timedelta(days=61)).date()
    conv = start("cus_new", tier="mid_market", mrr=1500, renewal_date=renewal, account_created_at=date(2020, 1, 1))
    # A chat quiet for two days would close itself: this conversation is kept open on purpose.
    policy = tmp_path / "never_idle.yaml"
    policy.write_text(Path(_always_open()).read_text().replace("  default: 1800", "  default: null"))
    async with build_worker(client, make_settings(task_queue, receiver, policy=str(policy))):
        for i, text in enumerate(DISTINCT_QUESTIONS[:6]):
            decision = await baton.send_message(client, task_queue, conv, msg(f"m{i}", text))
            assert decision.action == "continue"  # 6 unresolved messages: under the standard threshold of 8
        await skip_time(env, timedelta(days=2))
        decision = await baton.send_message(client, task_queue, conv, msg("m6", DISTINCT_QUESTIONS[6]))
        assert decision.action == "escalate"
        assert [t.id for t in decision.triggers] == ["unresolved_conversation"]
        assert "threshold 6" in decision.triggers[0].detail  # 8 x 0.8 for the renewal window


async def test_declared_incidents_are_recorded_for_reporting(
    env: WorkflowEnvironment, task_queue: str, receiver: WebhookReceiver
) -> None:
    from sqlalchemy import select

    from baton.store.database import create_engine, migrate_async, session_factory
    from baton.store.models import Incident as IncidentRow

    settings = make_settings(task_queue, receiver, policy=_always_open())
    store = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'ops.db'}"
    await migrate_async(store)
    settings = settings.model_copy(update={"database_url": store})
    async with build_worker(env.client, settings):
        await baton.declare_incident(env.client, task_queue, Incident(description="EU login outage", declared_by="kim"))
        await baton.end_incident(env.client, task_queue)
    engine = create_engine(store)
    async with session_factory(engine)() as session:
        [row] = (await session.execute(select(IncidentRow))).scalars().all()
    await engine.dispose()
    assert row.description == "EU login outage" and row.declared_by == "kim"
    assert row.ended_at is not None and row.ended_at >= row.started_at

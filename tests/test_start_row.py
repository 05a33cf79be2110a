"""A new conversation's row is written by setup, before its first decision; with the store down it is written
by an activity of its own once the store is back. New runs record one patch marker for all earlier changes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

import baton.activities.setup as setup_activities
from baton.activities.crm import EmbeddedCrm
from baton.activities.policy import PolicyStore
from baton.activities.setup import SetupActivities
from baton.activities.start_rows import StartRows
from baton.apps.client import handle, send_message
from baton.contract.messages import ContextInput, ConversationStart, MessageIn, SetupRequest, StartRow
from baton.contract.records import ConversationStartRecord
from baton.settings import Settings
from baton.store.database import create_engine, migrate_async, session_factory
from baton.store.models import Conversation
from baton.worker.wiring import build_worker
from baton.workflows.conversation import patches
from tests.conftest import time_skipping_server
from tests.test_idle_close import row


@pytest.fixture
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with time_skipping_server() as environment:
        yield environment


def new_start(customer_id: str = "cus_smb") -> ConversationStart:
    return ConversationStart(conversation_id=f"row-{uuid.uuid4().hex[:8]}", customer_id=customer_id)


async def history(client: Client, conversation_id: str) -> list:
    return [e async for e in handle(client, conversation_id).fetch_history_events()]


def scheduled_activities(events: list) -> list[str]:
    return [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


async def test_the_row_is_written_before_the_first_decision(env: WorkflowEnvironment, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}"
    await migrate_async(url)
    settings = Settings(task_queue=f"row-{uuid.uuid4().hex[:8]}", database_url=url, classifier="rules")
    async with build_worker(env.client, settings):
        start = new_start()
        decision = await send_message(
            env.client, settings.task_queue, start, MessageIn(message_id="m1", role="customer", text="How do I export?")
        )
        # No waiting: the row is there when the first decision is.
        recorded = await row(url, start.conversation_id)
        assert recorded is not None and recorded.closed_at is None and recorded.outcome == "open"
        assert recorded.customer_id == "cus_smb" and recorded.channel == "chat" and recorded.policy_name == "default"
        assert recorded.segment == decision.segment == "smb" and recorded.tier == "smb"
        await send_message(
            env.client, settings.task_queue, start, MessageIn(message_id="m2", role="customer", text="And to PDF?")
        )
        events = await history(env.client, start.conversation_id)
    assert "record_conversation_start" not in scheduled_activities(events)
    markers = [
        e.marker_recorded_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert len(markers) == 1 and patches.BASELINE.encode() in markers[0].details["patch-data"].payloads[0].data
    upserts = [
        e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
        for e in events
        if e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
    ]
    assert sum("TemporalChangeVersion" in fields for fields in upserts) == 1


async def test_with_the_store_down_the_row_comes_when_it_is_back(env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A store without its tables fails setup's write: the decision does not wait for it, and the workflow's
    own activity writes the row, retried until the store is migrated."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}"
    settings = Settings(task_queue=f"row-{uuid.uuid4().hex[:8]}", database_url=url, classifier="rules")
    async with build_worker(env.client, settings):
        start = new_start()
        decision = await send_message(
            env.client, settings.task_queue, start, MessageIn(message_id="m1", role="customer", text="How do I export?")
        )
        assert decision.action == "continue"
        await migrate_async(url)
        recorded = None
        for _ in range(100):
            recorded = await row(url, start.conversation_id)
            if recorded is not None:
                break
            await asyncio.sleep(0.1)
        assert recorded is not None and recorded.segment == "smb" and recorded.policy_name == "default"
        events = await history(env.client, start.conversation_id)
    assert scheduled_activities(events) == ["record_conversation_start"]


async def test_a_slow_store_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(setup_activities, "START_ROW_DEADLINE_SECONDS", 0.05)
    written: list[ConversationStartRecord] = []

    async def hanging(record: ConversationStartRecord) -> None:
        await asyncio.sleep(5)
        written.append(record)

    async def no_cooling(customer_id: str) -> None:
        return None

    activities = SetupActivities(EmbeddedCrm(), PolicyStore(Settings().policy), no_cooling, record_start=hanging)
    request = SetupRequest(
        context=ContextInput(customer_id="cus_smb"),
        start_row=StartRow(conversation_id="c1", channel="chat", started_at="2026-11-30T10:00:00Z"),
    )
    began = asyncio.get_running_loop().time()
    setup = await ActivityEnvironment().run(activities.prepare_conversation, request)
    assert not setup.start_recorded and not written
    assert asyncio.get_running_loop().time() - began < 2
    assert setup.context.facts.tier == "smb"  # the rest of setup stands


def test_only_changes_before_the_baseline_are_asked_through_it() -> None:
    with pytest.raises(ValueError, match="later-change"):
        patches.patched("later-change")


def start_record(conversation_id: str) -> ConversationStartRecord:
    return ConversationStartRecord(
        conversation_id=conversation_id, customer_id="cus_smb", channel="chat", started_at="2026-11-30T10:00:00Z"
    )


async def test_rows_that_start_together_share_a_transaction(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}"
    await migrate_async(url)
    engine = create_engine(url)
    commits: list[int] = []
    event.listen(engine.sync_engine, "commit", lambda _conn: commits.append(1))
    try:
        rows = StartRows(engine)
        await asyncio.gather(*(rows.write(start_record(f"c{i}")) for i in range(50)))
        async with session_factory(engine)() as session:
            written = (await session.scalars(select(Conversation.conversation_id))).all()
    finally:
        await engine.dispose()
    assert sorted(written) == sorted(f"c{i}" for i in range(50))
    assert 1 <= len(commits) <= 3  # the first row alone at most, then the rest together


async def test_a_failed_transaction_fails_each_of_its_rows(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'baton.db'}")  # never migrated: no table
    try:
        rows = StartRows(engine)
        results = await asyncio.gather(*(rows.write(start_record(f"c{i}")) for i in range(5)), return_exceptions=True)
    finally:
        await engine.dispose()
    assert len(results) == 5 and all(isinstance(r, OperationalError) for r in results)

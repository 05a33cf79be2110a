"""The SQL store on SQLite and, when BATON_TEST_DATABASE_URL is set, on PostgreSQL.

Each test gets an empty database: a temporary SQLite file, or on PostgreSQL a
database of its own created from the one in BATON_TEST_DATABASE_URL and dropped
afterwards. Retries are exercised for real: the activities run in a worker on
the time-skipping server, and a wrapper fails after the commit so that Temporal
runs the same write again.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    import pytest
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import insert, inspect, pool, select, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import IntegrityError
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
    from temporalio import activity
    from temporalio.client import Client
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment
    from temporalio.worker import Worker

    from baton.activities.records import RecordActivities
    from baton.contract.records import (
        ConversationEndRecord,
        ConversationStartRecord,
        EscalationRecord,
        PickupRecord,
        ResolutionRecord,
        ReviewLabelRecord,
        conversation_outcome,
    )
    from baton.store import records
    from baton.store.database import (
        create_engine,
        current_revision,
        head_revision,
        migrate,
        migrate_async,
        session_factory,
    )
    from baton.store.models import Base, Conversation, Escalation, MissedLabel, ReviewLabel

POSTGRES_ENV = "BATON_TEST_DATABASE_URL"
TABLES = {
    "conversations", "escalations", "incidents", "review_labels", "missed_labels", "api_keys", "alembic_version"
}

T0 = datetime(2025, 3, 14, 9, 26, 53, 589_793, tzinfo=UTC)  # the conversation's first message
CID = "conv-1"
MID = "m-3"
EID = f"{CID}:{MID}"


# --- databases ----------------------------------------------------------------------------------------


def _backends() -> list[Any]:
    backends = [pytest.param("sqlite", id="sqlite")]
    if os.environ.get(POSTGRES_ENV):
        backends.append(pytest.param("postgresql", id="postgresql"))
    return backends


def _admin() -> AsyncEngine:
    """An AUTOCOMMIT engine on the database named in BATON_TEST_DATABASE_URL, for CREATE and DROP DATABASE."""
    return create_async_engine(os.environ[POSTGRES_ENV], isolation_level="AUTOCOMMIT", poolclass=pool.NullPool)


async def _drop_databases(prefix: str) -> None:
    """Drop every database whose name starts with ``prefix``."""
    like = prefix.replace("_", r"\_") + "%"
    admin = _admin()
    try:
        async with admin.connect() as conn:
            found = await conn.execute(
                text(r"SELECT datname FROM pg_database WHERE datname LIKE :like ESCAPE '\'"), {"like": like}
            )
            for name in found.scalars().all():
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
def postgres_prefix() -> Iterator[str]:
    """A name prefix unique to this test session, so that concurrent sessions on one server never collide."""
    prefix = f"baton_test_{uuid.uuid4().hex[:8]}"
    yield prefix
    if os.environ.get(POSTGRES_ENV):
        asyncio.run(_drop_databases(prefix))  # a safety net: each test drops its own database


@pytest.fixture(params=_backends())
async def db_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_prefix: str) -> AsyncIterator[str]:
    """The URL of an empty database, not yet migrated."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'state' / 'baton.db'}"  # the folder does not exist yet
        return
    name = f"{postgres_prefix}_{uuid.uuid4().hex[:8]}"
    admin = _admin()
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(os.environ[POSTGRES_ENV]).set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    await migrate_async(db_url)
    store = create_engine(db_url)
    try:
        yield store
    finally:
        await store.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return session_factory(engine)


async def write(sessions: async_sessionmaker[AsyncSession], func: Any, record: BaseModel) -> None:
    async with sessions.begin() as session:
        await func(session, record)


async def escalation_row(sessions: async_sessionmaker[AsyncSession], eid: str = EID) -> Escalation | None:
    async with sessions() as session:
        return await session.get(Escalation, eid)


async def conversation_row(sessions: async_sessionmaker[AsyncSession], cid: str = CID) -> Conversation | None:
    async with sessions() as session:
        return await session.get(Conversation, cid)


async def count(sessions: async_sessionmaker[AsyncSession], model: type[Base]) -> int:
    async with sessions() as session:
        return len((await session.scalars(select(model))).all())


# --- records ----------------------------------------------------------------------------------------------


def start_record(**changes: Any) -> ConversationStartRecord:
    values = {
        "conversation_id": CID,
        "customer_id": "cust-42",
        "channel": "chat",
        "started_at": T0,
        "tier": "enterprise",
        "policy_name": "default",
    }
    return ConversationStartRecord(**(values | changes))


def escalation_record(**changes: Any) -> EscalationRecord:
    values = {
        "conversation_id": CID,
        "message_id": MID,
        "customer_id": "cust-42",
        "channel": "chat",
        "segment": "enterprise",
        "urgency": "queued",
        "triggers": ["human_request", "repeated_frustration"],
        "queue": "enterprise",
        "escalated_at": T0 + timedelta(seconds=95.5),
        "messages_to_escalation": 3,
        "conversation_started_at": T0,
    }
    return EscalationRecord(**(values | changes))


def pickup_record(**changes: Any) -> PickupRecord:
    values = {
        "conversation_id": CID,
        "message_id": MID,
        "agent_id": "agent-7",
        "picked_up_at": T0 + timedelta(seconds=95.5 + 240),
        "escalated_at": T0 + timedelta(seconds=95.5),
    }
    return PickupRecord(**(values | changes))


def resolution_record(**changes: Any) -> ResolutionRecord:
    values = {
        "conversation_id": CID,
        "message_id": MID,
        "agent_id": "agent-7",
        "resolved_at": T0 + timedelta(minutes=20),
        "necessary": True,
        "csat": 4,
    }
    return ResolutionRecord(**(values | changes))


def end_record(**changes: Any) -> ConversationEndRecord:
    values = {
        "conversation_id": CID,
        "closed_at": T0 + timedelta(minutes=25),
        "outcome": "escalated",
        "customer_messages": 5,
        "closed_reason": "closed",
        "segment": "enterprise",
        "tier": "enterprise",
    }
    return ConversationEndRecord(**(values | changes))


def assert_escalated(row: Escalation | None) -> None:
    """The facts of escalation_record()."""
    assert row is not None
    assert (row.conversation_id, row.message_id, row.customer_id) == (CID, MID, "cust-42")
    assert (row.segment, row.channel, row.urgency, row.queue) == ("enterprise", "chat", "queued", "enterprise")
    assert row.triggers == ["human_request", "repeated_frustration"]
    assert row.escalated_at == T0 + timedelta(seconds=95.5)
    assert row.escalated_at.tzinfo is not None
    assert row.messages_to_escalation == 3
    assert row.seconds_to_escalation == pytest.approx(95.5)


def assert_picked_up(row: Escalation | None) -> None:
    """The facts of pickup_record()."""
    assert row is not None
    assert row.agent_id == "agent-7"
    assert row.picked_up_at == T0 + timedelta(seconds=95.5 + 240)
    assert row.seconds_to_pickup == pytest.approx(240)


# --- migrations ---------------------------------------------------------------------------------------------


async def test_migrate_from_empty_and_again(db_url: str) -> None:
    # The synchronous entry point, called here while an event loop runs (as a CLI helper inside async code might).
    migrate(db_url)
    store = create_engine(db_url)
    try:
        async with store.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            assert tables >= TABLES
            assert await conn.run_sync(current_revision) == head_revision() == "0003"
        async with session_factory(store).begin() as session:
            await records.record_conversation_start(session, start_record())

        await migrate_async(db_url)  # at head already: nothing changes, nothing is lost

        async with store.connect() as conn:
            assert await conn.run_sync(current_revision) == head_revision()
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
            assert versions == ["0003"]
        assert await conversation_row(session_factory(store)) is not None
    finally:
        await store.dispose()


async def test_migrations_started_together_take_turns(db_url: str) -> None:
    await asyncio.gather(*(migrate_async(db_url) for _ in range(4)))
    store = create_engine(db_url)
    try:
        async with store.connect() as conn:
            assert await conn.run_sync(current_revision) == head_revision()
    finally:
        await store.dispose()


async def test_migrations_match_the_models(engine: AsyncEngine) -> None:
    def differences(sync: Any) -> list[Any]:
        context = MigrationContext.configure(sync, opts={"compare_type": True, "compare_server_default": False})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_foreign_keys_are_enforced(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await session.execute(insert(Escalation).values(id="nope:m", conversation_id="nope", message_id="m"))


async def test_database_checks_csat_range(engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(sessions, records.record_escalation, escalation_record())
    with pytest.raises(IntegrityError):
        async with sessions.begin() as session:
            await session.execute(Escalation.__table__.update().values(csat=6))


# --- idempotence and order ------------------------------------------------------------------------------------


async def test_record_escalation_three_times_is_one_row(sessions: async_sessionmaker[AsyncSession]) -> None:
    for _ in range(3):
        await write(sessions, records.record_escalation, escalation_record())
    assert await count(sessions, Escalation) == 1
    assert await count(sessions, Conversation) == 1
    assert_escalated(await escalation_row(sessions))
    conversation = await conversation_row(sessions)
    assert conversation is not None
    # The stub the escalation made: what the escalation knew, still open.
    assert (conversation.customer_id, conversation.channel, conversation.started_at) == ("cust-42", "chat", T0)
    assert conversation.outcome == "open"


async def test_record_pickup_twice_is_the_same(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(sessions, records.record_escalation, escalation_record())
    await write(sessions, records.record_pickup, pickup_record())
    first = await escalation_row(sessions)
    await write(sessions, records.record_pickup, pickup_record())
    second = await escalation_row(sessions)
    assert await count(sessions, Escalation) == 1
    assert_escalated(second)
    assert_picked_up(second)
    assert first is not None and second is not None
    columns = [column.key for column in Escalation.__table__.columns]
    assert [getattr(first, c) for c in columns] == [getattr(second, c) for c in columns]


async def test_full_lifecycle_retried_at_every_stage(sessions: async_sessionmaker[AsyncSession]) -> None:
    stages = [
        (records.record_conversation_start, start_record()),
        (records.record_escalation, escalation_record()),
        (records.record_pickup, pickup_record()),
        (records.record_resolution, resolution_record()),
        (records.record_conversation_end, end_record()),
    ]
    for func, record in stages:
        await write(sessions, func, record)
        await write(sessions, func, record)
    row = await escalation_row(sessions)
    assert_escalated(row)
    assert_picked_up(row)
    assert row is not None
    assert (row.resolved_at, row.necessary, row.csat, row.handback) == (T0 + timedelta(minutes=20), True, 4, False)
    conversation = await conversation_row(sessions)
    assert conversation is not None
    assert (conversation.customer_id, conversation.channel, conversation.policy_name) == ("cust-42", "chat", "default")
    assert (conversation.started_at, conversation.closed_at) == (T0, T0 + timedelta(minutes=25))
    assert (conversation.outcome, conversation.customer_messages, conversation.segment) == (
        "escalated",
        5,
        "enterprise",
    )
    assert await count(sessions, Escalation) == 1
    assert await count(sessions, Conversation) == 1


async def test_pickup_after_resolution_keeps_the_resolution(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(sessions, records.record_escalation, escalation_record())
    await write(sessions, records.record_pickup, pickup_record())
    await write(sessions, records.record_resolution, resolution_record())
    await write(sessions, records.record_pickup, pickup_record())  # a late retry
    await write(sessions, records.record_escalation, escalation_record())  # and another
    row = await escalation_row(sessions)
    assert row is not None
    assert (row.resolved_at, row.necessary, row.csat) == (T0 + timedelta(minutes=20), True, 4)
    assert_picked_up(row)
    assert_escalated(row)


async def test_pickup_before_escalation_then_escalation_fills_in(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Chosen behaviour: the pickup creates the rows with what it knows; the escalation record completes them."""
    await write(sessions, records.record_pickup, pickup_record())
    row = await escalation_row(sessions)
    assert_picked_up(row)
    assert row is not None
    assert row.escalated_at == T0 + timedelta(seconds=95.5)
    assert (row.urgency, row.customer_id, row.triggers, row.seconds_to_escalation) == (None, None, [], None)
    conversation = await conversation_row(sessions)
    assert conversation is not None and conversation.outcome == "open" and conversation.customer_id is None

    await write(sessions, records.record_resolution, resolution_record())
    await write(sessions, records.record_escalation, escalation_record())
    row = await escalation_row(sessions)
    assert_escalated(row)
    assert_picked_up(row)
    assert row is not None and row.resolved_at == T0 + timedelta(minutes=20)
    conversation = await conversation_row(sessions)
    assert conversation is not None and (conversation.customer_id, conversation.started_at) == ("cust-42", T0)


async def test_resolution_first_creates_the_row(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(sessions, records.record_resolution, resolution_record())
    row = await escalation_row(sessions)
    assert row is not None and (row.agent_id, row.necessary, row.picked_up_at) == ("agent-7", True, None)
    await write(sessions, records.record_pickup, pickup_record())
    await write(sessions, records.record_escalation, escalation_record())
    row = await escalation_row(sessions)
    assert_escalated(row)
    assert_picked_up(row)
    assert row is not None and (row.resolved_at, row.csat) == (T0 + timedelta(minutes=20), 4)


async def test_escalation_recorded_again_updates_its_own_facts(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Urgency raised or routing widened: the escalation's facts change; the pickup's stay."""
    await write(sessions, records.record_escalation, escalation_record())
    await write(sessions, records.record_pickup, pickup_record())
    await write(sessions, records.record_escalation, escalation_record(urgency="immediate", queue="general"))
    row = await escalation_row(sessions)
    assert row is not None and (row.urgency, row.queue) == ("immediate", "general")
    assert_picked_up(row)


async def test_seconds_to_escalation_from_the_stored_start(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(sessions, records.record_conversation_start, start_record())
    await write(sessions, records.record_escalation, escalation_record(conversation_started_at=None))
    row = await escalation_row(sessions)
    assert row is not None and row.seconds_to_escalation == pytest.approx(95.5)


async def test_end_before_start_keeps_the_outcome(sessions: async_sessionmaker[AsyncSession]) -> None:
    end = end_record(outcome="bot_resolved", customer_messages=2, segment=None, conversation_csat=5)
    await write(sessions, records.record_conversation_end, end)
    await write(sessions, records.record_conversation_start, start_record(segment="smb"))
    await write(sessions, records.record_conversation_start, start_record(started_at=T0 + timedelta(hours=1)))
    conversation = await conversation_row(sessions)
    assert conversation is not None
    assert (conversation.outcome, conversation.closed_at) == ("bot_resolved", T0 + timedelta(minutes=25))
    assert (conversation.customer_messages, conversation.conversation_csat) == (2, 5)
    assert conversation.started_at == T0  # a start records once: the first one wins
    assert (conversation.segment, conversation.tier) == ("smb", "enterprise")


async def test_starts_in_one_statement(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Setup's shared writes: several conversations' rows in one statement; of two records of one conversation
    the first counts, and a row already there keeps what it has."""
    await write(sessions, records.record_conversation_start, start_record(conversation_id="c0", segment="smb"))
    starts = [
        start_record(conversation_id="c0", segment="enterprise", started_at=T0 + timedelta(hours=2)),
        start_record(conversation_id="c1", segment="smb"),
        start_record(conversation_id="c2"),
        start_record(conversation_id="c1", segment="enterprise", started_at=T0 + timedelta(hours=1)),
    ]
    async with sessions.begin() as session:
        await records.record_conversation_starts(session, starts)
        await records.record_conversation_starts(session, [])
    rows = {cid: await conversation_row(sessions, cid) for cid in ("c0", "c1", "c2")}
    assert {cid: (row.segment, row.started_at) for cid, row in rows.items() if row is not None} == {
        "c0": ("smb", T0),
        "c1": ("smb", T0),
        "c2": (None, T0),
    }


async def test_two_escalations_of_one_conversation(sessions: async_sessionmaker[AsyncSession]) -> None:
    """After a handback the customer can escalate again: a second row, keyed by its own message."""
    await write(sessions, records.record_escalation, escalation_record())
    await write(sessions, records.record_resolution, resolution_record(handback=True))
    later = T0 + timedelta(minutes=30)
    await write(
        sessions,
        records.record_escalation,
        escalation_record(message_id="m-9", escalated_at=later, urgency="immediate"),
    )
    assert await count(sessions, Escalation) == 2
    second = await escalation_row(sessions, f"{CID}:m-9")
    assert second is not None and second.seconds_to_escalation == pytest.approx(1800)
    first = await escalation_row(sessions)
    assert first is not None and first.handback is True


async def test_review_label_upserts_per_reviewer(sessions: async_sessionmaker[AsyncSession]) -> None:
    await write(sessions, records.record_escalation, escalation_record())
    at = T0 + timedelta(days=3)
    await write(
        sessions,
        records.record_review_label,
        ReviewLabelRecord(escalation_id=EID, reviewer="ana", necessary=True, labelled_at=at, note="fine"),
    )
    await write(
        sessions,
        records.record_review_label,
        ReviewLabelRecord(escalation_id=EID, reviewer="bo", necessary=True, labelled_at=at),
    )
    await write(
        sessions,
        records.record_review_label,
        ReviewLabelRecord(escalation_id=EID, reviewer="ana", necessary=False, labelled_at=at + timedelta(hours=1)),
    )
    async with sessions() as session:
        labels = (await session.scalars(select(ReviewLabel).order_by(ReviewLabel.reviewer))).all()
    assert [(lab.reviewer, lab.necessary, lab.note) for lab in labels] == [("ana", False, None), ("bo", True, None)]
    assert labels[0].labelled_at == at + timedelta(hours=1)


async def test_missed_label_upserts_per_reviewer_and_stubs_the_conversation(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    at = T0 + timedelta(days=2)
    # An agent marks a conversation whose start the store has not seen yet: the row is made as a stub.
    await write(
        sessions,
        records.record_missed_label,
        records.MissedLabelRecord(
            conversation_id=CID, message_id="m-1", reviewer="alice", labelled_at=at, source="agent"
        ),
    )
    await write(
        sessions,
        records.record_missed_label,
        records.MissedLabelRecord(
            conversation_id=CID, message_id="m-2", reviewer="ana", labelled_at=at, note="asked twice"
        ),
    )
    await write(
        sessions,
        records.record_missed_label,
        records.MissedLabelRecord(
            conversation_id=CID, message_id="m-0", reviewer="ana", labelled_at=at + timedelta(hours=1)
        ),
    )
    await write(sessions, records.record_conversation_start, start_record())  # the start still fills the stub
    async with sessions() as session:
        labels = (await session.scalars(select(MissedLabel).order_by(MissedLabel.reviewer))).all()
        conversation = await session.get(Conversation, CID)
    assert [(lab.reviewer, lab.message_id, lab.source, lab.note) for lab in labels] == [
        ("alice", "m-1", "agent", None),
        ("ana", "m-0", "review", None),
    ]
    assert labels[1].labelled_at == at + timedelta(hours=1)
    assert conversation is not None and conversation.started_at == T0


def test_missed_label_record_names_the_bad_field() -> None:
    with pytest.raises(ValueError, match="message_id"):
        records.MissedLabelRecord(conversation_id=CID, message_id="", reviewer="ana", labelled_at=T0)
    with pytest.raises(ValueError, match="source"):
        records.MissedLabelRecord(conversation_id=CID, message_id="m", reviewer="ana", labelled_at=T0, source="bot")


def test_conversation_outcome() -> None:
    assert conversation_outcome(True, "abandoned") == "escalated"
    assert conversation_outcome(False, "Abandoned") == "abandoned"
    assert conversation_outcome(False, "closed") == "bot_resolved"
    assert conversation_outcome(False, None) == "bot_resolved"


def test_records_reject_naive_times() -> None:
    with pytest.raises(ValueError):
        escalation_record(escalated_at=datetime(2025, 1, 1))


# --- through a real worker: Temporal retries, the write lands once ---------------------------------------------------


class Step(BaseModel):
    activity: str
    record: dict[str, Any]


class Script(BaseModel):
    steps: list[Step]


@workflow.defn(name="RecordsTestWorkflow")
class RecordsTestWorkflow:
    @workflow.run
    async def run(self, script: Script) -> None:
        for step in script.steps:
            await workflow.execute_activity(
                step.activity,
                step.record,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100), maximum_attempts=5),
            )


def lifecycle() -> list[tuple[str, BaseModel]]:
    """A whole escalated conversation, as (activity name, input) in the order the workflow records it."""
    return [
        ("record_conversation_start", start_record()),
        ("record_escalation", escalation_record()),
        ("record_pickup", pickup_record()),
        ("record_resolution", resolution_record()),
        ("record_conversation_end", end_record()),
    ]


def script(*steps: tuple[str, BaseModel]) -> Script:
    return Script(steps=[Step(activity=name, record=record.model_dump(mode="json")) for name, record in steps])


async def run_script(client: Client, task_queue: str, activities: list[Any], steps: Script) -> None:
    async with Worker(client, task_queue=task_queue, workflows=[RecordsTestWorkflow], activities=activities):
        await client.execute_workflow(
            RecordsTestWorkflow.run, steps, id=f"records-{uuid.uuid4().hex[:12]}", task_queue=task_queue
        )


async def test_escalation_activity_retried_after_commit_is_one_row(
    client: Client, task_queue: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    real = RecordActivities(engine)
    attempts: list[int] = []

    @activity.defn(name="record_escalation")
    async def record_escalation(record: EscalationRecord) -> None:
        attempts.append(activity.info().attempt)
        await real.record_escalation(record)  # committed ...
        if activity.info().attempt < 3:
            raise RuntimeError("connection reset before the acknowledgement")  # ... but the worker never heard

    await run_script(client, task_queue, [record_escalation], script(("record_escalation", escalation_record())))

    assert attempts == [1, 2, 3]
    assert await count(sessions, Escalation) == 1
    assert await count(sessions, Conversation) == 1
    assert_escalated(await escalation_row(sessions))


async def test_every_activity_through_a_worker_failing_once_after_commit(
    client: Client, task_queue: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    real = RecordActivities(engine)
    attempts: dict[str, list[int]] = {}

    def failing_once(name: str, model: type[BaseModel]) -> Any:
        method = getattr(real, name)  # each activity method is named like its activity

        @activity.defn(name=name)
        async def wrapper(record: dict[str, Any]) -> None:
            attempts.setdefault(name, []).append(activity.info().attempt)
            await method(model.model_validate(record))
            if activity.info().attempt == 1:
                raise RuntimeError("lost after commit")

        return wrapper

    steps = script(*lifecycle())
    wrappers = [failing_once(name, type(record)) for name, record in lifecycle()]
    await run_script(client, task_queue, wrappers, steps)

    assert attempts == {step.activity: [1, 2] for step in steps.steps}
    row = await escalation_row(sessions)
    assert_escalated(row)
    assert_picked_up(row)
    assert row is not None and (row.resolved_at, row.csat) == (T0 + timedelta(minutes=20), 4)
    conversation = await conversation_row(sessions)
    assert conversation is not None and (conversation.outcome, conversation.customer_messages) == ("escalated", 5)
    assert await count(sessions, Escalation) == 1


async def test_activities_as_registered(
    client: Client, task_queue: str, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The real activities, by the names the conversation workflow calls, decoding their pydantic inputs."""
    steps = script(*lifecycle())
    await run_script(client, task_queue, RecordActivities(engine).all, steps)
    row = await escalation_row(sessions)
    assert_escalated(row)
    assert_picked_up(row)
    conversation = await conversation_row(sessions)
    assert conversation is not None and conversation.closed_at == T0 + timedelta(minutes=25)


async def test_a_record_the_database_rejects_fails_without_retry(engine: AsyncEngine) -> None:
    real = RecordActivities(engine)
    label = ReviewLabelRecord(escalation_id="missing:m", reviewer="ana", necessary=True, labelled_at=T0)
    with pytest.raises(ApplicationError) as rejected:
        await ActivityEnvironment().run(real._write, records.record_review_label, label, "review_label_recorded")
    assert rejected.value.type == "RecordRejected" and rejected.value.non_retryable

"""Driving the workflow: transcripts replayed on the time-skipping test server, batch after batch.

A replay never writes to the real store and consults no CRM: each policy gets a worker of its own on a
throwaway database, with the transcript carrying the customer's facts.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import yaml
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from baton.activities.crm import EmbeddedCrm
from baton.apps.binaries import test_server
from baton.apps.client import close, get_state, send_message
from baton.apps.replay.collect import RecordCollector
from baton.apps.replay.policy import replayed_policy
from baton.apps.replay.records import ReplayRecord
from baton.apps.replay.transcripts import ReplayConversation, message_times, rebase_customer
from baton.classifier.scorer import Scorer, scorer_for
from baton.contract.messages import ConversationStart, HandoffNote, MessageIn
from baton.settings import Settings, get_settings
from baton.store.database import migrate_async
from baton.worker.connection import data_converter, register_search_attributes
from baton.worker.wiring import build_worker

NOTE_WAIT_SECONDS = 60.0
OnBatch = Callable[[list[ReplayRecord]], None]
BATCH_SIZE = 50  # conversations sharing one timeline; bounded by the server's in-flight updates


class ConversationReplay:
    """One transcript being replayed: sends its messages and collects the record."""

    def __init__(
        self, conv: ReplayConversation, run_id: str, replay_now: datetime, scorer: Scorer | None = None
    ) -> None:
        self.conv = conv
        self.scorer = scorer
        self.offsets = message_times(conv)
        self.start = ConversationStart(
            conversation_id=f"replay-{run_id}-{conv.conversation_id}",
            customer_id=conv.customer.id,
            channel=conv.channel,
            customer=rebase_customer(conv, replay_now),
        )
        self.collected = RecordCollector(conv, self.offsets)
        self.note: HandoffNote | None = None

    async def wait_for_note(self, client: Client, timeout: float = NOTE_WAIT_SECONDS) -> None:
        """The note is written in the background after an escalation; give it a bounded time."""
        if self.collected.at_message is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = await get_state(client, self.start.conversation_id)
            escalations = [*state.past_escalations, *([state.escalation] if state.escalation else [])]
            if escalations and escalations[0].note is not None:
                self.note = escalations[0].note
                return
            await asyncio.sleep(0.05)

    async def send(self, client: Client, task_queue: str, index: int) -> None:
        message = self.conv.messages[index]
        incoming = MessageIn(message_id=f"m{index}", role=message.role, text=message.text)
        try:
            # Scored here, as the gateway does: the scores travel with the message into the history.
            scorer = self.scorer or scorer_for(get_settings())
            decision = await send_message(client, task_queue, self.start, incoming, scorer)
        except WorkflowUpdateFailedError as err:
            self.collected.rejected(index, str(err.cause) if err.cause else str(err))
            return
        if message.role == "customer":
            self.collected.decided(index, decision)

    def record(self) -> ReplayRecord:
        """The conversation's record, once its replay has ended."""
        return self.collected.record(self.note)


async def replay_batch(
    env: WorkflowEnvironment,
    task_queue: str,
    batch: list[ReplayConversation],
    run_id: str,
    scorer: Scorer | None = None,
) -> list[ReplayRecord]:
    """Replay a batch on one shared timeline.

    All conversations of a batch start together; the test server's clock is
    moved to each distinct message offset in turn, and the messages due then
    are sent one by one in conversation order, so the output does not depend on
    timing. Every conversation thus sees its own gaps exactly.
    """
    client = env.client
    replay_now = await env.get_current_time()
    replays = [ConversationReplay(conv, run_id, replay_now, scorer) for conv in batch]
    due: dict[timedelta, list[tuple[int, int]]] = {}
    for c, rep in enumerate(replays):
        for m, offset in enumerate(rep.offsets):
            due.setdefault(offset, []).append((c, m))
    elapsed = timedelta(0)
    for offset in sorted(due):
        if offset > elapsed:
            await env.sleep(offset - elapsed)
            elapsed = offset
        # One at a time, in a fixed order: conversations share team queues, so sending concurrently would
        # make queue positions (and the waits customers are told) depend on which update landed first.
        for c, m in sorted(due[offset]):
            await replays[c].send(client, task_queue, m)
    await asyncio.gather(*(rep.wait_for_note(client) for rep in replays))
    await asyncio.gather(*(close(client, rep.start.conversation_id, reason="replay finished") for rep in replays))
    return [rep.record() for rep in replays]


@asynccontextmanager
async def replay_environment() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server with Baton's search attributes registered."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=test_server(), data_converter=data_converter(get_settings())
    )
    async with env:
        await register_search_attributes(env.client)
        yield env


@asynccontextmanager
async def policy_worker(
    env: WorkflowEnvironment, policy_file: str | None, run_id: str, scorer: Scorer | None = None
) -> AsyncIterator[str]:
    """A worker running `policy_file` on a task queue of its own; yields the task queue.

    Keep it running until the test server stops: a closed conversation still
    leaves its queue after the replay has moved on, and work left without a
    worker would hold the server's clock for every later run.
    """
    # A replay never writes to the real store: its records go to a throwaway database.
    with tempfile.TemporaryDirectory(prefix="baton-replay-") as scratch:
        store_url = f"sqlite+aiosqlite:///{Path(scratch) / 'replay.db'}"
        await migrate_async(store_url)
        policy = replayed_policy(policy_file)
        policy_path = Path(scratch) / "policy.yaml"
        policy_path.write_text(yaml.safe_dump(policy.model_dump(mode="json"), sort_keys=False))
        settings = Settings(task_queue=f"replay-{run_id}", policy=str(policy_path), database_url=store_url)
        # The transcript carries the customer's facts; no CRM is consulted.
        async with build_worker(env.client, settings, crm=EmbeddedCrm(customers={}), classifier=scorer):
            yield settings.task_queue


async def replay_policy(
    env: WorkflowEnvironment,
    task_queue: str,
    conversations: list[ReplayConversation],
    run_id: str,
    *,
    batch_size: int = BATCH_SIZE,
    on_batch: OnBatch | None = None,
    scorer: Scorer | None = None,
) -> list[ReplayRecord]:
    """Replay every conversation on the worker serving `task_queue` (see policy_worker), batch after batch.

    `run_id` prefixes the workflow ids, so several policies can run on one
    server without seeing each other's conversations. `on_batch` gets each
    batch's records as soon as they exist.
    """
    records: list[ReplayRecord] = []
    for i in range(0, len(conversations), batch_size):
        batch = await replay_batch(env, task_queue, conversations[i : i + batch_size], run_id, scorer)
        if on_batch is not None:
            on_batch(batch)
        records.extend(batch)
    return records


def _writer(out: TextIO) -> Callable[[list[ReplayRecord]], None]:
    def write(batch: list[ReplayRecord]) -> None:
        for record in batch:
            out.write(record.json_line() + "\n")
        out.flush()

    return write


async def replay(
    conversations: list[ReplayConversation],
    policy_file: str | None,
    out: TextIO,
    batch_size: int = BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> list[ReplayRecord]:
    """Replay under one policy, writing one JSON record per conversation to `out` as batches finish (and handing
    each batch to `on_batch`, e.g. a progress bar)."""
    run_id = uuid.uuid4().hex[:8]
    write = _writer(out)

    def done(batch: list[ReplayRecord]) -> None:
        write(batch)
        if on_batch is not None:
            on_batch(batch)

    async with replay_environment() as env, policy_worker(env, policy_file, run_id) as task_queue:
        return await replay_policy(env, task_queue, conversations, run_id, batch_size=batch_size, on_batch=done)


async def replay_both(
    conversations: list[ReplayConversation],
    policy_a: str,
    policy_b: str,
    batch_size: int = BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> tuple[list[ReplayRecord], list[ReplayRecord]]:
    """Replay the same conversations under two policies, one after the other on one test server.

    Each policy has its own worker, task queue and workflow-id prefix. Customer
    dates are rebased onto the server's clock per batch, so both runs see each
    account as it was when the conversation happened.
    """
    run_id = uuid.uuid4().hex[:8]
    run_a, run_b = f"{run_id}-a", f"{run_id}-b"
    async with (
        replay_environment() as env,
        policy_worker(env, policy_a, run_a) as queue_a,
        policy_worker(env, policy_b, run_b) as queue_b,
    ):
        before = await replay_policy(env, queue_a, conversations, run_a, batch_size=batch_size, on_batch=on_batch)
        after = await replay_policy(env, queue_b, conversations, run_b, batch_size=batch_size, on_batch=on_batch)
    return before, after


async def replay_models(
    conversations: list[ReplayConversation],
    policy_file: str | None,
    model_a: Scorer,
    model_b: Scorer,
    batch_size: int = BATCH_SIZE,
    on_batch: OnBatch | None = None,
) -> tuple[list[ReplayRecord], list[ReplayRecord]]:
    """Replay the same conversations under one policy with two classifiers, one after the other.

    Every message is scored afresh by the run's model (as the gateway would score it), never taken from
    recorded scores; the worker of each run holds the same model, so nothing is scored by another.
    """
    run_id = uuid.uuid4().hex[:8]
    run_a, run_b = f"{run_id}-a", f"{run_id}-b"
    async with (
        replay_environment() as env,
        policy_worker(env, policy_file, run_a, model_a) as queue_a,
        policy_worker(env, policy_file, run_b, model_b) as queue_b,
    ):
        before = await replay_policy(
            env, queue_a, conversations, run_a, batch_size=batch_size, on_batch=on_batch, scorer=model_a
        )
        after = await replay_policy(
            env, queue_b, conversations, run_b, batch_size=batch_size, on_batch=on_batch, scorer=model_b
        )
    return before, after

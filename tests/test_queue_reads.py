"""Many conversations joining one queue at once: each learns its own place from a read shared with the
others, and the queue workflow is asked a handful of times instead of once per conversation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from baton.activities.routing import QueueReads, RoutingActivities
from baton.contract.messages import QueueEntry, QueueRequest, QueueSnapshot, QueueStatusRequest
from baton.settings import Settings
from baton.worker.wiring import build_worker


async def test_readers_join_a_read_that_started_after_they_asked() -> None:
    started: list[int] = []
    gates: list[asyncio.Event] = []

    async def read(queue: str) -> QueueSnapshot:
        started.append(len(started))
        gate = asyncio.Event()
        gates.append(gate)
        await gate.wait()
        return QueueSnapshot(queue=f"{queue}#{len(gates)}")

    reads = QueueReads(read)
    first = asyncio.create_task(reads.get("q"))
    await asyncio.sleep(0)
    # Asked while the first read runs: it may predate their enqueue, so all ten wait for one read after it.
    later = [asyncio.create_task(reads.get("q")) for _ in range(10)]
    await asyncio.sleep(0)
    assert len(started) == 1
    gates[0].set()
    assert (await first).queue == "q#1"
    await asyncio.sleep(0.01)
    assert len(started) == 2
    gates[1].set()
    assert {(await t).queue for t in later} == {"q#2"}


async def test_a_failed_shared_read_fails_each_caller_and_the_next_read_starts_afresh() -> None:
    calls = 0

    async def read(queue: str) -> QueueSnapshot:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise RuntimeError("server busy")
        return QueueSnapshot(queue=queue)

    reads = QueueReads(read)
    results = await asyncio.gather(reads.get("q"), reads.get("q"), return_exceptions=True)
    assert isinstance(results[0], RuntimeError)
    assert isinstance(results[1], QueueSnapshot)  # queued behind the failed read, so served by the next
    assert (await reads.get("q")).queue == "q" and calls == 3


async def test_thirty_conversations_joining_one_queue_at_once_each_see_their_own_place(
    env: WorkflowEnvironment, settings: Settings, task_queue: str
) -> None:
    client = env.client
    routing = RoutingActivities(client, task_queue)
    queries = 0
    snapshot = routing._snapshot

    async def counted(queue: str) -> QueueSnapshot:
        nonlocal queries
        queries += 1
        return await snapshot(queue)

    routing._reads = QueueReads(counted)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    entries = [
        QueueEntry(conversation_id=f"c{i:02d}", urgency="queued", enqueued_at=base + timedelta(seconds=i))
        for i in range(30)
    ]
    async with build_worker(client, settings):
        statuses = await asyncio.gather(
            *(routing.enqueue_conversation(QueueRequest(queue="billing", entry=e)) for e in entries)
        )
        reads = queries
        final = await asyncio.gather(
            *(
                routing.queue_status(QueueStatusRequest(queue="billing", conversation_id=e.conversation_id))
                for e in entries
            )
        )
    # Every one saw its own enqueue, behind only those who waited longer (serving order is by enqueue time).
    # A caller that lost the race to create the queue retries and lands after later callers, so those may
    # not see it yet: a place can be earlier than the final one, never later.
    for i, status in enumerate(statuses):
        assert status.position is not None, i
        assert 1 <= status.position <= i + 1, (i, status.position)
        assert status.depth >= status.position
    assert [s.position for s in final] == list(range(1, 31))
    assert reads < 10, reads

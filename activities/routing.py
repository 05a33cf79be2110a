"""Routing: put conversations in team queues and read positions back.

These activities talk to the QueueWorkflow entities through the Temporal
client: signal-with-start so a queue exists the moment it is first needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from baton.contract.activities import Routing
from baton.contract.ids import queue_workflow_id
from baton.contract.messages import (
    QueueRemovalRequest,
    QueueRequest,
    QueueSnapshot,
    QueueState,
    QueueStatus,
    QueueStatusRequest,
)
from baton.workflows.queue import QueueWorkflow, status_in

_SIGNAL_WITH_START_ATTEMPTS = 5


class QueueReads:
    """Reads of one queue workflow, shared by everyone who asks at the same time (per worker process).

    A query to a workflow with signals pending waits for them (a consistent query), and the server buffers
    only a few per workflow: fifty conversations joining one queue at once, each querying, were refused
    with "consistent query buffer is full" and waited out their routing deadline. Here a caller joins a read
    that starts after it asked, so it still sees its own enqueue: the read in flight if none has started
    yet, else the one queued behind it. At most two reads per queue are pending, whatever the load.
    """

    def __init__(self, read: Callable[[str], Awaitable[QueueSnapshot]]) -> None:
        self._read = read
        self._running: dict[str, asyncio.Task[QueueSnapshot]] = {}
        self._queued: dict[str, asyncio.Task[QueueSnapshot]] = {}

    async def get(self, queue: str) -> QueueSnapshot:
        task = self._queued.get(queue)
        if task is None:
            running = self._running.get(queue)
            if running is None or running.done():
                task = self._start(queue)
            else:
                task = self._queued[queue] = _quiet(asyncio.create_task(self._after(running, queue)))
        # A caller cancelled (its activity timed out) leaves the shared read running for the others.
        return await asyncio.shield(task)

    def _start(self, queue: str) -> asyncio.Task[QueueSnapshot]:
        task = self._running[queue] = _quiet(asyncio.create_task(self._read(queue)))
        return task

    async def _after(self, running: asyncio.Task[QueueSnapshot], queue: str) -> QueueSnapshot:
        await asyncio.wait([running])
        del self._queued[queue]  # callers from now on start, or queue behind, the read that starts here
        return await self._start(queue)


def _quiet(task: asyncio.Task[QueueSnapshot]) -> asyncio.Task[QueueSnapshot]:
    """Every caller of a shared read may be gone when it fails: its error is retrieved here, not logged as lost."""
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


class RoutingActivities(Routing):
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._reads = QueueReads(self._snapshot)

    @activity.defn(name="enqueue_conversation")
    async def enqueue_conversation(self, request: QueueRequest) -> QueueStatus:
        for attempt in range(_SIGNAL_WITH_START_ATTEMPTS):
            try:
                await self._client.start_workflow(
                    QueueWorkflow.run,
                    QueueState(name=request.queue),
                    id=queue_workflow_id(request.queue, self._task_queue),
                    task_queue=self._task_queue,
                    start_signal="enqueue",
                    start_signal_args=[request.entry],
                    static_summary=f"Human queue `{request.queue}`",
                )
                break
            except WorkflowAlreadyStartedError:
                # Conversations joining a queue that does not exist yet race to create it: the server can
                # answer the losers "already started" instead of signalling the winner's run. The next
                # attempt finds that run and signals it (enqueue is idempotent per conversation).
                if attempt == _SIGNAL_WITH_START_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))
        return await self._status(request.queue, request.entry.conversation_id, request.entry.default_handle_seconds)

    @activity.defn(name="dequeue_conversation")
    async def dequeue_conversation(self, request: QueueRemovalRequest) -> None:
        try:
            await self._client.get_workflow_handle(queue_workflow_id(request.queue, self._task_queue)).signal(
                QueueWorkflow.remove, request.removal
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise  # a queue that never existed has nothing to remove

    @activity.defn(name="raise_queue_priority")
    async def raise_queue_priority(self, request: QueueStatusRequest) -> QueueStatus:
        handle = self._client.get_workflow_handle(queue_workflow_id(request.queue, self._task_queue))
        await handle.signal(QueueWorkflow.raise_priority, request.conversation_id)
        return await self._status(request.queue, request.conversation_id, request.default_handle_seconds)

    @activity.defn(name="queue_status")
    async def queue_status(self, request: QueueStatusRequest) -> QueueStatus:
        return await self._status(request.queue, request.conversation_id, request.default_handle_seconds)

    async def _status(self, queue: str, conversation_id: str, default_handle_seconds: float) -> QueueStatus:
        return status_in(await self._reads.get(queue), conversation_id, default_handle_seconds)

    async def _snapshot(self, queue: str) -> QueueSnapshot:
        try:
            return await self._client.get_workflow_handle(queue_workflow_id(queue, self._task_queue)).query(
                QueueWorkflow.snapshot, result_type=QueueSnapshot
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return QueueSnapshot(queue=queue)

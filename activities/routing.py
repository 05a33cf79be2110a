"""Routing: put conversations in team queues and read positions back.

These activities talk to the QueueWorkflow entities through the Temporal
client: signal-with-start so a queue exists the moment it is first needed.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from baton.contract.activities import Routing
from baton.contract.ids import queue_workflow_id
from baton.contract.messages import QueueRemovalRequest, QueueRequest, QueueState, QueueStatus, QueueStatusRequest
from baton.workflows.queue import QueueWorkflow


class RoutingActivities(Routing):
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn(name="enqueue_conversation")
    async def enqueue_conversation(self, request: QueueRequest) -> QueueStatus:
        await self._client.start_workflow(
            QueueWorkflow.run,
            QueueState(name=request.queue),
            id=queue_workflow_id(request.queue, self._task_queue),
            task_queue=self._task_queue,
            start_signal="enqueue",
            start_signal_args=[request.entry],
            static_summary=f"Human queue `{request.queue}`",
        )
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
        try:
            return await self._client.get_workflow_handle(queue_workflow_id(queue, self._task_queue)).query(
                QueueWorkflow.status, conversation_id, result_type=QueueStatus
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return QueueStatus(queue=queue, position=None, depth=0, estimated_wait_seconds=default_handle_seconds)

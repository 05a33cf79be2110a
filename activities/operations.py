"""Activities that read and update the cross-conversation entities: customers and operations."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from baton.contract.activities import Operations
from baton.contract.ids import customer_workflow_id, operations_workflow_id
from baton.contract.messages import (
    CoolingStatus,
    OperationsEvent,
    OperationsState,
    OperationsStatus,
    ResolvedEscalation,
)
from baton.logging import get_logger
from baton.workflows.customer import CustomerWorkflow
from baton.workflows.operations import OperationsWorkflow

log = get_logger(__name__)

# A read younger than this is answered from memory: escalating decisions in a flood all ask at once.
STATUS_CACHE_SECONDS = 1.0
# How long an escalation waits for a fresh read before it goes on with the last known state. The
# operations workflow answers queries through a workflow task, which queues behind every other task
# on a busy worker; no decision waits for that.
STATUS_READ_BOUND_SECONDS = 0.5
# A read stuck behind an overloaded server is abandoned after this (the server's own limit is 30 s), so the
# next escalation starts a fresh one instead of living on the last known state for half a minute.
STATUS_QUERY_TIMEOUT = timedelta(seconds=5)


class SurgeReader:
    """The operations workflow's status, read at most once at a time per worker process and cached.

    A stale value starts one refresh (never several in parallel) and waits for it at most
    STATUS_READ_BOUND_SECONDS; past that it answers with the last known state marked `stale`
    (or "no surge" if none was ever read). The refresh carries on and the next escalation gets it.
    """

    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._last: OperationsStatus | None = None
        self._read_at = 0.0  # monotonic time of the last successful read
        self._refresh: asyncio.Task[OperationsStatus] | None = None

    async def status(self, bound: float = STATUS_READ_BOUND_SECONDS) -> OperationsStatus:
        if self._last is not None and time.monotonic() - self._read_at < STATUS_CACHE_SECONDS:
            return self._last
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._read())
            # Its callers may all have gone on without it: an error is retrieved here, never logged as lost.
            self._refresh.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            return await asyncio.wait_for(asyncio.shield(self._refresh), bound)
        except TimeoutError:
            last = self._last or OperationsStatus()
            return last.model_copy(update={"stale": True})

    async def _read(self) -> OperationsStatus:
        try:
            status = await self._client.get_workflow_handle(operations_workflow_id(self._task_queue)).query(
                OperationsWorkflow.status, result_type=OperationsStatus, rpc_timeout=STATUS_QUERY_TIMEOUT
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                # Nobody may be awaiting this task any more: answer, never raise into the void.
                log.warning("surge_read_failed", status=err.status.name if err.status else None)
                return (self._last or OperationsStatus()).model_copy(update={"stale": True})
            status = OperationsStatus()
        status = status.model_copy(update={"read_at": datetime.now(UTC), "stale": False})
        self._last, self._read_at = status, time.monotonic()
        return status


class OperationsActivities(Operations):
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._surge = SurgeReader(client, task_queue)

    async def customer_status(self, customer_id: str) -> CoolingStatus | None:
        """Used by conversation set-up; None when the customer has no recent escalation."""
        try:
            return await self._client.get_workflow_handle(customer_workflow_id(customer_id, self._task_queue)).query(
                CustomerWorkflow.status, result_type=CoolingStatus
            )
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    @activity.defn(name="note_resolved_escalation")
    async def note_resolved_escalation(self, resolved: ResolvedEscalation) -> None:
        await self._client.start_workflow(
            CustomerWorkflow.run,
            CoolingStatus(customer_id=resolved.customer_id),
            id=customer_workflow_id(resolved.customer_id, self._task_queue),
            task_queue=self._task_queue,
            start_signal="escalation_resolved",
            start_signal_args=[resolved],
            static_summary="Customer's recent escalations (cooling period)",
        )

    @activity.defn(name="report_to_operations")
    async def report_to_operations(self, event: OperationsEvent) -> None:
        await self._client.start_workflow(
            OperationsWorkflow.run,
            OperationsState(thresholds=event.thresholds),
            id=operations_workflow_id(self._task_queue),
            task_queue=self._task_queue,
            start_signal="event",
            start_signal_args=[event],
            static_summary="Support operations: surge and incidents",
        )

    @activity.defn(name="operations_status")
    async def operations_status(self) -> OperationsStatus:
        return await self._surge.status()

"""Activities that read and update the cross-conversation entities: customers and operations."""

from __future__ import annotations

import time

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
from baton.workflows.customer import CustomerWorkflow
from baton.workflows.operations import OperationsWorkflow

STATUS_CACHE_SECONDS = 1.0


class OperationsActivities(Operations):
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._cached: tuple[float, OperationsStatus] | None = None

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
        # Read at most once a second per worker: escalating decisions in a flood all ask at once.
        now = time.monotonic()
        if self._cached is not None and now - self._cached[0] < STATUS_CACHE_SECONDS:
            return self._cached[1]
        try:
            status = await self._client.get_workflow_handle(operations_workflow_id(self._task_queue)).query(
                OperationsWorkflow.status, result_type=OperationsStatus
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            status = OperationsStatus()
        self._cached = (now, status)
        return status

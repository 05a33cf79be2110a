"""What a chat backend does with Baton, as functions over a Temporal client.

Used by the gateway, the CLI and the replay command alike.
"""

from __future__ import annotations

from baton.contract import search_attributes as sa
from baton.contract.messages import (
    CloseRequest,
    ConversationInput,
    ConversationStart,
    ConversationState,
    Decision,
    Incident,
    MessageIn,
    OperationsState,
    OperationsStatus,
    Phase,
    PickupRequest,
    PickupResult,
    ResolveRequest,
    SurgeThresholds,
)
from baton.workflows.conversation import ConversationWorkflow
from baton.workflows.operations import OperationsWorkflow, operations_workflow_id
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode


class ConversationClosedError(Exception):
    """The conversation has ended; a new message needs a new conversation id."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation: {conversation_id} is closed; start a new conversation id")
        self.conversation_id = conversation_id


def workflow_id(conversation_id: str) -> str:
    return f"conversation-{conversation_id}"


def static_summary(start: ConversationStart) -> str:
    return f"Support conversation {start.conversation_id} ({start.channel})"[:200]


async def send_message(client: Client, task_queue: str, start: ConversationStart, message: MessageIn) -> Decision:
    """Start the conversation if needed and add the message, in one call.

    Raises ConversationClosedError when the conversation has already ended.
    """
    operation = WithStartWorkflowOperation(
        ConversationWorkflow.run,
        ConversationInput(start=start),
        id=workflow_id(start.conversation_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A closed conversation is never silently restarted with an empty transcript.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=static_summary(start),
        search_attributes=initial_search_attributes(start),
        static_details=(
            f"Customer `{start.customer_id}` on **{start.channel}**. "
            "Each message is an `add_message` update answered with a decision; query `state` for the transcript."
        ),
    )
    try:
        return await client.execute_update_with_start_workflow(
            ConversationWorkflow.add_message, message, start_workflow_operation=operation
        )
    except WorkflowAlreadyStartedError as err:
        raise ConversationClosedError(start.conversation_id) from err
    except RPCError as err:
        # Some servers report the closed id as a bare ALREADY_EXISTS status.
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            raise ConversationClosedError(start.conversation_id) from err
        raise


def initial_search_attributes(start: ConversationStart) -> TypedSearchAttributes:
    """Operators can filter a conversation from its very first event."""
    pairs = [SearchAttributePair(sa.PHASE, Phase.BOT.value)]
    if start.customer.tier:
        pairs.append(SearchAttributePair(sa.TIER, start.customer.tier))
    return TypedSearchAttributes(pairs)


def handle(client: Client, conversation_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(workflow_id(conversation_id))


async def get_state(client: Client, conversation_id: str) -> ConversationState:
    return await handle(client, conversation_id).query(ConversationWorkflow.state)


async def close(client: Client, conversation_id: str, reason: str = "closed") -> None:
    await handle(client, conversation_id).signal(ConversationWorkflow.close, CloseRequest(reason=reason))


async def pickup(client: Client, conversation_id: str, request: PickupRequest) -> PickupResult:
    """An agent takes the conversation; returns the note and transcript. Refused if it is not waiting."""
    return await handle(client, conversation_id).execute_update(
        ConversationWorkflow.pickup, request, result_type=PickupResult
    )


async def resolve(client: Client, conversation_id: str, request: ResolveRequest) -> ConversationState:
    return await handle(client, conversation_id).execute_update(
        ConversationWorkflow.resolve, request, result_type=ConversationState
    )


def _operations_start(task_queue: str, thresholds: SurgeThresholds | None = None) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        OperationsWorkflow.run,
        OperationsState(thresholds=thresholds or SurgeThresholds()),
        id=operations_workflow_id(task_queue),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Support operations: surge and incidents",
    )


async def declare_incident(client: Client, task_queue: str, incident: Incident) -> OperationsStatus:
    """An operator declares an incident: a surge starts at once, for live and new conversations."""
    return await client.execute_update_with_start_workflow(
        OperationsWorkflow.declare_incident, incident, start_workflow_operation=_operations_start(task_queue)
    )


async def end_incident(client: Client, task_queue: str, declared_by: str = "operator") -> OperationsStatus:
    return await client.get_workflow_handle(operations_workflow_id(task_queue)).execute_update(
        OperationsWorkflow.end_incident, declared_by, result_type=OperationsStatus
    )


async def operations_status(client: Client, task_queue: str) -> OperationsStatus:
    try:
        return await client.get_workflow_handle(operations_workflow_id(task_queue)).query(
            OperationsWorkflow.status, result_type=OperationsStatus
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return OperationsStatus()
        raise

"""What a chat backend does with Baton, as functions over a Temporal client.

Used by the gateway, the CLI and the replay command alike. Workflows and their handlers are
addressed by the names in ``baton.contract.ids``, with typed results, so no workflow code loads here.
"""

from __future__ import annotations

import asyncio

from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from baton.apps import conversation_view
from baton.classifier.scorer import Scorer, score_off_loop
from baton.contract import ids
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


class ConversationClosedError(Exception):
    """The conversation has ended; a new message needs a new conversation id."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation: {conversation_id} is closed; start a new conversation id")
        self.conversation_id = conversation_id


def workflow_id(conversation_id: str) -> str:
    return ids.conversation_workflow_id(conversation_id)


def static_summary(start: ConversationStart) -> str:
    return conversation_view.static_summary(start)


async def send_message(
    client: Client, task_queue: str, start: ConversationStart, message: MessageIn, scorer: Scorer | None = None
) -> Decision:
    """Start the conversation if needed and add the message, in one call.

    A customer message is scored here by `scorer` (the gateway's classifier), so that the scores travel in
    the update and are recorded with it, at no extra cost to the workflow; without a scorer the workflow
    scores it in a local activity. Scores a caller put on the message are never passed on.
    Raises ConversationClosedError when the conversation has already ended.
    """
    operation = WithStartWorkflowOperation(
        ids.CONVERSATION_WORKFLOW,
        ConversationInput(start=start),
        id=workflow_id(start.conversation_id),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A closed conversation is never silently restarted with an empty transcript.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        static_summary=static_summary(start),
        search_attributes=initial_search_attributes(start),
        static_details=conversation_view.static_details(start),
    )
    try:
        return await client.execute_update_with_start_workflow(
            ids.ADD_MESSAGE, await _scored(message, scorer), start_workflow_operation=operation, result_type=Decision
        )
    except WorkflowAlreadyStartedError as err:
        raise ConversationClosedError(start.conversation_id) from err
    except RPCError as err:
        # Some servers report the closed id as a bare ALREADY_EXISTS status.
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            raise ConversationClosedError(start.conversation_id) from err
        raise
    finally:
        _settle(operation)


async def add_message(
    client: Client, conversation_id: str, message: MessageIn, scorer: Scorer | None = None
) -> Decision:
    """Add a message to a conversation that has started; never starts one (scored as in send_message).

    Raises RPCError NOT_FOUND when the conversation does not exist, or has ended.
    """
    return await handle(client, conversation_id).execute_update(
        ids.ADD_MESSAGE, await _scored(message, scorer), result_type=Decision
    )


async def _scored(message: MessageIn, scorer: Scorer | None) -> MessageIn:
    scores = await score_off_loop(scorer, message.text) if scorer is not None and message.role == "customer" else None
    return message.model_copy(update={"scores": scores})


def _settle(operation: WithStartWorkflowOperation) -> None:
    """Mark the start's outcome as seen. When the start fails (the conversation is closed, the server is down)
    the SDK sets the failure on the operation's workflow-handle future as well as raising it; nobody awaits that
    future, and asyncio would log "Future exception was never retrieved" at error level for every such call."""
    future = getattr(operation, "_workflow_handle", None)  # the SDK keeps it private; absent in other versions
    if isinstance(future, asyncio.Future) and future.done() and not future.cancelled():
        future.exception()


def initial_search_attributes(start: ConversationStart) -> TypedSearchAttributes:
    """Operators can filter a conversation from its very first event."""
    pairs = [SearchAttributePair(sa.PHASE, Phase.BOT.value)]
    if start.customer.tier:
        pairs.append(SearchAttributePair(sa.TIER, start.customer.tier))
    return TypedSearchAttributes(pairs)


def handle(client: Client, conversation_id: str) -> WorkflowHandle:
    return client.get_workflow_handle(workflow_id(conversation_id))


async def get_state(client: Client, conversation_id: str) -> ConversationState:
    return await handle(client, conversation_id).query(ids.STATE, result_type=ConversationState)


async def close(client: Client, conversation_id: str, reason: str = "closed") -> None:
    await handle(client, conversation_id).signal(ids.CLOSE, CloseRequest(reason=reason))


async def pickup(client: Client, conversation_id: str, request: PickupRequest) -> PickupResult:
    """An agent takes the conversation; returns the note and transcript. Refused if it is not waiting."""
    return await handle(client, conversation_id).execute_update(ids.PICKUP, request, result_type=PickupResult)


async def resolve(client: Client, conversation_id: str, request: ResolveRequest) -> ConversationState:
    return await handle(client, conversation_id).execute_update(ids.RESOLVE, request, result_type=ConversationState)


def _operations_start(task_queue: str, thresholds: SurgeThresholds | None = None) -> WithStartWorkflowOperation:
    return WithStartWorkflowOperation(
        ids.OPERATIONS_WORKFLOW,
        OperationsState(thresholds=thresholds or SurgeThresholds()),
        id=ids.operations_workflow_id(task_queue),
        task_queue=task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary="Support operations: surge and incidents",
    )


async def declare_incident(client: Client, task_queue: str, incident: Incident) -> OperationsStatus:
    """An operator declares an incident: a surge starts at once, for live and new conversations."""
    operation = _operations_start(task_queue)
    try:
        return await client.execute_update_with_start_workflow(
            ids.DECLARE_INCIDENT, incident, start_workflow_operation=operation, result_type=OperationsStatus
        )
    finally:
        _settle(operation)


async def end_incident(client: Client, task_queue: str, declared_by: str = "operator") -> OperationsStatus:
    return await client.get_workflow_handle(ids.operations_workflow_id(task_queue)).execute_update(
        ids.END_INCIDENT, declared_by, result_type=OperationsStatus
    )


async def operations_status(client: Client, task_queue: str) -> OperationsStatus:
    try:
        return await client.get_workflow_handle(ids.operations_workflow_id(task_queue)).query(
            ids.OPERATIONS_STATUS, result_type=OperationsStatus
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return OperationsStatus()
        raise

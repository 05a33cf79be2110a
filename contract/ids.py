"""Workflow ids and the names of workflows and their handlers.

Clients address workflows by these names, so that starting a conversation or
sending it a message needs no workflow code: the gateway loads none.
"""

from __future__ import annotations

# Workflow type names.
CONVERSATION_WORKFLOW = "ConversationWorkflow"
QUEUE_WORKFLOW = "QueueWorkflow"
CUSTOMER_WORKFLOW = "CustomerWorkflow"
OPERATIONS_WORKFLOW = "OperationsWorkflow"

# ConversationWorkflow's handlers.
ADD_MESSAGE = "add_message"  # update: MessageIn -> Decision
PICKUP = "pickup"  # update: PickupRequest -> PickupResult
PICKUP_SIGNAL = "pickup_signal"  # signal: PickupRequest
RESOLVE = "resolve"  # update: ResolveRequest -> ConversationState
CLOSE = "close"  # signal: CloseRequest
STATE = "state"  # query: -> ConversationState

# OperationsWorkflow's handlers.
OPERATIONS_EVENT = "event"  # signal: OperationsEvent
DECLARE_INCIDENT = "declare_incident"  # update: Incident -> OperationsStatus
END_INCIDENT = "end_incident"  # update: declared_by -> OperationsStatus
OPERATIONS_STATUS = "status"  # query: -> OperationsStatus


def conversation_workflow_id(conversation_id: str) -> str:
    return f"conversation-{conversation_id}"


def queue_workflow_id(name: str, task_queue: str) -> str:
    """Queues belong to a deployment (its task queue): two deployments on one namespace never share one."""
    return f"queue-{name}@{task_queue}"


def customer_workflow_id(customer_id: str, task_queue: str) -> str:
    return f"customer-{customer_id}@{task_queue}"


def operations_workflow_id(task_queue: str) -> str:
    return f"operations@{task_queue}"

"""Workflow ids, the names of workflows and their handlers, and the shape of the ids clients choose.

Clients address workflows by these names, so that starting a conversation or
sending it a message needs no workflow code: the gateway loads none.
"""

from __future__ import annotations

# --- The ids clients choose, and the namespace Baton keeps for its own --------------------------------
#
# A client (a chat backend, a helpdesk) chooses conversation, message and customer ids; Baton derives its own
# message ids and webhook idempotency keys from them by joining parts with ":" (`m7:ack`,
# `c-42:agent-joined:m7`, `c-42:ticket:m7`). A client id never contains ":", so no id a client sends can equal
# one of Baton's, and no key Baton derives for a client's message can equal a key of Baton's own. Ids also
# start with a letter or digit, so "." and ".." (and anything that reads as a path) are never ids.
# The gateway enforces these patterns (docs: README "Contracts"); the contract models themselves stay as
# permissive as they always were, so histories recorded before the patterns existed still replay.

ID_MAX_CHARS = 200
CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
"""A conversation or message id as a client sends it: letters, digits, ".", "_", "-"; never ":"."""
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$"
"""A customer id: as CLIENT_ID_PATTERN, plus "@" and "+" so that an email address can be one (CRMs look
customers up by email)."""
BATON_ID_SEPARATOR = ":"
"""Joins the parts of the ids Baton makes itself; never in a client's id."""

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

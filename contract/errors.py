"""Error types workflows and activities fail with, as ``ApplicationError.type``.

Callers branch on the type and read ``details``, never the message text. The
gateway keeps one table from these types to HTTP statuses.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    # The conversation has ended; a new message needs a new conversation id. details: ()
    CONVERSATION_CLOSED = "ConversationClosed"
    # A message broke the contract. details: ("field: problem", ...), each naming a MessageIn field.
    INVALID_MESSAGE = "InvalidMessage"
    # An agent action the conversation's state does not allow (not waiting, another agent owns it).
    # details: ("field: problem",) naming the request field (phase, agent_id).
    AGENT_ACTION_REFUSED = "AgentActionRefused"
    # The policy named at start cannot be loaded. details: (policy name,)
    POLICY_ERROR = "PolicyError"
    # end_incident with no declared incident. details: ()
    NO_INCIDENT = "NoIncident"

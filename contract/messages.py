"""The message contract shared by clients, workflows and activities.

One pydantic model per message so that fields can be added later without
breaking stored histories: every new field must have a default.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from baton.contract.labels import ContractModel, Intent, Topic
from baton.contract.scoring import MessageScores

MAX_TEXT_CHARS = 8000
MAX_ID_CHARS = 200

Role = Literal["customer", "bot", "agent"]
# "baton" marks what Baton itself said to the customer (acknowledgements, wait updates).
TranscriptRole = Literal["customer", "bot", "agent", "baton"]
# "human": a person owns the conversation; the bot must not reply.
Action = Literal["continue", "escalate", "human"]
Urgency = Literal["immediate", "queued"]
TriggerCategory = Literal["behavioral", "contextual", "sentiment"]


class Phase(StrEnum):
    BOT = "bot"
    ESCALATED = "escalated"
    WITH_AGENT = "with_agent"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CustomerFacts(ContractModel):
    """What the chat backend (or the CRM) knows about the customer.

    Every field is optional: the workflow merges backend facts over CRM facts.
    """

    tier: str | None = None
    mrr: float | None = Field(default=None, ge=0)
    account_created_at: date | None = None
    renewal_date: date | None = None
    health: float | None = Field(default=None, ge=0, le=100)
    lifecycle_stage: str | None = None
    flags: list[str] = Field(default_factory=list)
    last_escalation_at: datetime | None = None
    last_escalation_agent: str | None = None
    timezone: str | None = Field(default=None, description="IANA zone: callback times are given in it")


class ConversationStart(ContractModel):
    conversation_id: str = Field(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9._:\-]+$")
    customer_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    channel: str = Field(default="chat", min_length=1, max_length=40)
    customer: CustomerFacts = Field(default_factory=CustomerFacts)
    policy: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_\-]*$",
        description="Policy name under policies/; the worker's default when unset",
    )


ROLES: tuple[str, ...] = ("customer", "bot", "agent")


class MessageIn(ContractModel):
    message_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    # A plain string on the wire so that a bad role reaches the workflow's
    # validator and is rejected with a reason, not a decoding failure.
    role: str = Field(json_schema_extra={"enum": list(ROLES)})
    text: str
    sent_at: datetime | None = None
    agent_id: str | None = Field(default=None, max_length=MAX_ID_CHARS, description="Required for agent messages")
    scores: MessageScores | None = Field(
        default=None,
        description="Set by Baton's gateway and client, never taken from a chat backend: the classifier's "
        "scores of a customer message, recorded with it in the conversation's history",
    )


class Signals(ContractModel):
    sentiment: float = Field(ge=-1, le=1)
    frustration: float = Field(ge=0, le=1)
    intents: list[Intent] = Field(default_factory=list)
    markers: list[str] = Field(default_factory=list, description="profanity, shouting, repeated_punctuation, ...")
    source: Literal["rules", "model", "llm"] = "rules"
    topic: Topic | None = None
    topic_probability: float | None = None
    probabilities: dict[Intent, float] = Field(default_factory=dict, description="Per intent, from the classifier")
    model_version: str | None = Field(default=None, description="The classifier that scored the message")


class TriggerHit(ContractModel):
    id: str
    category: TriggerCategory
    detail: str = ""


class Decision(ContractModel):
    message_id: str
    action: Action
    urgency: Urgency | None = None
    triggers: list[TriggerHit] = Field(default_factory=list)
    customer_text: str | None = None
    signals: Signals | None = None
    segment: str | None = None
    phase: Phase = Phase.BOT
    surge: bool = Field(default=False, description="Kept with the bot as a general incident question during a surge")


class CustomerContext(ContractModel):
    """CRM facts merged with backend facts, plus where they came from."""

    customer_id: str
    facts: CustomerFacts = Field(default_factory=CustomerFacts)
    source: str = "none"
    available: bool = True
    cooling: CoolingStatus | None = Field(default=None, description="Recent escalations of this customer")


class TranscriptEntry(ContractModel):
    message_id: str
    role: TranscriptRole
    text: str
    at: datetime
    signals: Signals | None = None


class ContextInput(ContractModel):
    customer_id: str
    backend_facts: CustomerFacts = Field(default_factory=CustomerFacts)


class StartRow(ContractModel):
    """The conversation's row, for setup to write with the segment, tier and policy it finds."""

    conversation_id: str
    channel: str
    started_at: datetime


class SetupRequest(ContractModel):
    policy: str | None = None
    context: ContextInput
    start_row: StartRow | None = Field(
        default=None, description="Write the conversation's row too (a new conversation's first run)"
    )


class ConversationSetup(ContractModel):
    """The policy (as data; validated by the workflow), the customer's context, and whether the row was written
    (else the workflow writes it with an activity of its own)."""

    policy: dict
    context: CustomerContext
    start_recorded: bool = False


class CloseRequest(ContractModel):
    reason: str = "closed"


class ConversationState(ContractModel):
    """The whole live state; carried through continue-as-new unchanged."""

    start: ConversationStart
    phase: Phase = Phase.BOT
    transcript: list[TranscriptEntry] = Field(default_factory=list)
    decisions: dict[str, Decision] = Field(default_factory=dict)
    customer_messages: int = 0
    escalation: Escalation | None = Field(default=None, description="The current (or last) escalation")
    past_escalations: list[Escalation] = Field(default_factory=list, description="Earlier ones, ended by handback")
    triggers_fired: list[TriggerHit] = Field(default_factory=list)
    context: CustomerContext | None = None
    policy_name: str | None = None
    closed_reason: str | None = None
    runs: int = 1
    model_version: str | None = Field(default=None, description="The classifier version pinned at the first score")
    judge_tokens: int = Field(default=0, description="LLM judge tokens spent in this conversation")
    start_recorded: bool = Field(default=False, description="The store has the conversation's row since it began")
    dropped_messages: int = Field(
        default=0,
        description="Transcript entries left behind at continue-as-new (the first message and the latest are kept)",
    )


class ConversationInput(ContractModel):
    """Workflow input. `carried_*` are set only by continue-as-new."""

    start: ConversationStart
    carried_state: ConversationState | None = None
    carried_policy: dict | None = None


class ConversationSummary(ContractModel):
    """The workflow's result when a conversation closes."""

    conversation_id: str
    phase: Phase
    escalated: bool
    urgency: Urgency | None = None
    triggers: list[str] = Field(default_factory=list)
    customer_messages: int = 0
    closed_reason: str | None = None


def message_problems(message: MessageIn, max_chars: int = MAX_TEXT_CHARS) -> list[str]:
    """Why a message cannot be accepted, each problem naming its field; empty when fine."""
    problems = []
    if message.role not in ROLES:
        problems.append(f"role: must be one of {', '.join(ROLES)} (got '{message.role}')")
    if not message.text.strip():
        problems.append("text: must not be empty")
    elif len(message.text) > max_chars:
        problems.append(f"text: {len(message.text)} characters, more than the limit of {max_chars}")
    if not message.message_id.strip():
        problems.append("message_id: must not be blank")
    return problems


# --- The handoff -------------------------------------------------------------


class BugTicketDraft(ContractModel):
    title: str
    steps: list[str] = Field(default_factory=list)
    expected: str = ""
    actual: str = ""
    environment: str = ""


class HandoffNote(ContractModel):
    """What an agent reads in 30 seconds before replying."""

    summary: str
    customer_wants: str
    already_tried: list[str] = Field(default_factory=list)
    sentiment_trajectory: str
    account: str
    triggers: list[str] = Field(default_factory=list, description="Each trigger that fired and why")
    recommended_actions: list[str] = Field(default_factory=list)
    suggested_first_reply: str
    technical: bool = False
    bug_ticket: BugTicketDraft | None = None
    source: Literal["llm", "fallback"] = "fallback"
    fallback_reason: str | None = None


class NoteRequest(ContractModel):
    conversation_id: str
    channel: str
    transcript: list[TranscriptEntry]
    context: CustomerContext | None = None
    triggers: list[TriggerHit] = Field(default_factory=list)
    urgency: Urgency | None = None
    segment: str | None = None
    max_tokens: int = 700
    redact: bool = Field(default=True, description="Personal data out of the prompt (the policy's redaction.llm)")


OutboundKind = Literal[
    "escalation", "status", "wait_update", "sla_breached", "agent_joined", "agent", "handback", "async_escalation"
]


class OutboundMessage(ContractModel):
    """A message to the customer, delivered through the chat backend's webhook."""

    conversation_id: str
    channel: str
    message_id: str = Field(description="Stable per message: the webhook's idempotency key")
    kind: OutboundKind
    text: str
    agent_id: str | None = None


class DeliveryResult(ContractModel):
    delivered: bool
    status: int | None = None
    detail: str = ""


class HelpdeskTicket(ContractModel):
    """The summary ticket for asynchronous channels (email, ticket)."""

    idempotency_key: str
    conversation_id: str
    customer_id: str
    channel: str
    subject: str
    priority: Literal["urgent", "high", "normal"]
    urgency: Urgency
    reply_within_seconds: int
    note: HandoffNote
    transcript: list[TranscriptEntry] = Field(default_factory=list)


class PageRequest(ContractModel):
    """Page on-call about a conversation; `dedup_key` ties a trigger to its later resolve."""

    dedup_key: str
    action: Literal["trigger", "resolve"] = "trigger"
    summary: str
    severity: Literal["critical", "error", "warning", "info"] = "error"
    conversation_id: str
    details: dict[str, str] = Field(default_factory=dict)


# --- Queues and agents ---------------------------------------------------------


class QueueEntry(ContractModel):
    conversation_id: str
    urgency: Urgency
    segment_rank: int = Field(default=0, description="Position of the segment in the policy: 0 is served first")
    boost: int = Field(default=0, description="Raised once the SLA is breached")
    enqueued_at: datetime
    default_handle_seconds: float = Field(default=360, gt=0)
    preferred_agent_id: str | None = Field(default=None, description="The agent who helped this customer last time")
    callback: bool = Field(default=False, description="Promised a callback at the opening; served first")


class QueueRemoval(ContractModel):
    conversation_id: str
    reason: Literal["picked_up", "moved", "closed"]
    at: datetime


class QueueStatus(ContractModel):
    queue: str
    position: int | None = Field(description="1 is next; None when not in this queue")
    depth: int
    estimated_wait_seconds: float


class QueueSnapshot(ContractModel):
    """A queue read once for everyone who asks at the same time: each computes its own position from it."""

    queue: str
    entries: list[QueueEntry] = Field(default_factory=list, description="In the order agents take them")
    seconds_per_pickup: float | None = Field(
        default=None, description="The observed pace of pickups; None until there is enough history"
    )


class QueueState(ContractModel):
    name: str
    entries: list[QueueEntry] = Field(default_factory=list)
    pickups: list[datetime] = Field(default_factory=list, description="Recent pickup times, for wait estimates")


class QueueRequest(ContractModel):
    queue: str
    entry: QueueEntry


class QueueRemovalRequest(ContractModel):
    queue: str
    removal: QueueRemoval


class QueueStatusRequest(ContractModel):
    queue: str
    conversation_id: str
    default_handle_seconds: float = 360


class PickupRequest(ContractModel):
    agent_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    agent_name: str | None = Field(default=None, max_length=100)


class ResolveRequest(ContractModel):
    agent_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    necessary: bool = Field(description="The agent's disposition: was the escalation needed?")
    csat: int | None = Field(default=None, ge=1, le=5)
    handback: bool = Field(default=False, description="Return the conversation to the bot")
    note: str | None = Field(default=None, max_length=2000)


class Escalation(ContractModel):
    """One escalation of a conversation, from the decision to its resolution."""

    at: datetime
    message_id: str
    urgency: Urgency
    triggers: list[TriggerHit] = Field(default_factory=list)
    queue: str | None = None
    async_channel: bool = False
    updates_sent: int = 0
    sla_breached: bool = False
    widened: bool = False
    paged: bool = False
    ticket_posted: bool = False
    agent_id: str | None = None
    agent_name: str | None = None
    picked_up_at: datetime | None = None
    resolved_at: datetime | None = None
    necessary: bool | None = None
    csat: int | None = None
    handback: bool = False
    resolution_note: str | None = None
    last_position: int | None = None
    last_wait_seconds: float | None = None
    after_hours: bool = False
    opens_at: datetime | None = Field(default=None, description="After hours: when the team's shift starts")
    callback_by: datetime | None = Field(default=None, description="After hours: the time promised to the customer")
    callback_queued: bool = False
    returning: bool = Field(default=False, description="Within the customer's cooling period")
    preferred_agent_id: str | None = None
    surge: bool = False
    note: HandoffNote | None = None
    undelivered: list[str] = Field(default_factory=list, description="Message ids whose delivery failed for good")


class PickupResult(ContractModel):
    """What the agent receives on pickup: everything, so the customer never repeats themself."""

    conversation_id: str
    agent_id: str
    waited_seconds: float
    note: HandoffNote
    transcript: list[TranscriptEntry]
    context: CustomerContext | None = None
    escalation: Escalation


# --- Customers across conversations, and operations ---------------------------


class ResolvedEscalation(ContractModel):
    customer_id: str
    conversation_id: str
    escalated_at: datetime
    resolved_at: datetime
    agent_id: str | None = None
    queue: str | None = None
    cooling_seconds: float = Field(default=48 * 3600, gt=0)


class CoolingStatus(ContractModel):
    """A customer's recent escalations: within `cooling_until` they are treated as sensitive."""

    customer_id: str
    cooling_until: datetime | None = None
    last_escalation_at: datetime | None = None
    last_agent_id: str | None = None
    last_queue: str | None = None
    escalations_in_window: int = 0

    def active(self, now: datetime) -> bool:
        return self.cooling_until is not None and now < self.cooling_until


class Incident(ContractModel):
    description: str = Field(min_length=3, max_length=300)
    declared_by: str = Field(default="operator", max_length=100)
    started_at: datetime | None = None


class SurgeThresholds(ContractModel):
    queue_depth: int = 25
    escalations_per_hour: int = 40


class OperationsEvent(ContractModel):
    """What conversations tell the operations workflow: joined or left the human queue."""

    conversation_id: str
    kind: Literal["escalated", "left_queue"]
    at: datetime
    thresholds: SurgeThresholds = Field(default_factory=SurgeThresholds)


class OperationsStatus(ContractModel):
    surge: bool = False
    reason: str | None = Field(default=None, description="incident | queue_depth | escalation_rate")
    incident: Incident | None = None
    waiting: int = 0
    escalations_last_hour: int = 0
    read_at: datetime | None = Field(
        default=None, description="When the operations workflow was read for this answer (None: never read)"
    )
    stale: bool = Field(
        default=False, description="The read did not answer within its bound: the last known state, or no surge"
    )


class OperationsState(ContractModel):
    incident: Incident | None = None
    waiting: list[str] = Field(default_factory=list)
    escalation_times: list[datetime] = Field(default_factory=list)
    thresholds: SurgeThresholds = Field(default_factory=SurgeThresholds)
    incidents_declared: int = 0


# Forward references (models that mention ones defined further down).
CustomerContext.model_rebuild()
ConversationState.model_rebuild()
ConversationInput.model_rebuild()


# --- The LLM judge for uncertain classifier scores ------------------------------

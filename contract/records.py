"""Stage records: what the workflows tell the store about a conversation's milestones.

One pydantic record per stage (start, escalation, pickup, resolution, end, review label,
incident). They are activity inputs, so they live in workflow histories: new fields need
defaults and unknown ones are ignored. ``baton.store.records`` writes them idempotently.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from baton.contract.messages import MAX_ID_CHARS

# Column sizes the store's tables are built with (baton.store.models reads them from here).
ID_LENGTH = MAX_ID_CHARS
ESCALATION_ID_LENGTH = 2 * ID_LENGTH + 1  # "<conversation_id>:<message_id>"
LABEL_LENGTH = 200  # segment, tier, queue and policy names, close reasons (longer values are cut here)
CHANNEL_LENGTH = 40  # baton.contract.messages.ConversationStart.channel

Urgency = Literal["immediate", "queued"]
ClosedOutcome = Literal["bot_resolved", "escalated", "abandoned"]
# Close reasons that mean the customer went away rather than being helped.
ABANDONED_REASONS = frozenset({"abandoned", "inactive", "idle", "timeout", "customer_left"})

Id = Annotated[str, Field(min_length=1, max_length=ID_LENGTH)]
Channel = Annotated[str, Field(min_length=1, max_length=CHANNEL_LENGTH)]
# Names that come from policies and CRMs: a long one is cut to fit rather than rejected (a rejected record is lost).
Label = Annotated[str, AfterValidator(lambda value: value[:LABEL_LENGTH])]


class _Record(BaseModel):
    # Records are activity inputs stored in workflow histories: new fields need defaults, unknown ones are ignored.
    model_config = ConfigDict(extra="ignore")


class ConversationStartRecord(_Record):
    conversation_id: Id
    customer_id: Id
    channel: Channel
    started_at: AwareDatetime = Field(description="The conversation's first message")
    segment: Label | None = None
    tier: Label | None = None
    policy_name: Label | None = None


class _EscalationStage(_Record):
    """A stage of one escalation, identified by the conversation and the customer message that escalated."""

    conversation_id: Id
    message_id: Id = Field(description="The customer message that escalated; with conversation_id, the row's id")

    @property
    def escalation_id(self) -> str:
        return escalation_id(self.conversation_id, self.message_id)


class EscalationRecord(_EscalationStage):
    customer_id: Id
    channel: Channel
    urgency: Urgency
    escalated_at: AwareDatetime
    messages_to_escalation: int = Field(ge=1, description="Customer messages up to and including the escalating one")
    triggers: list[str] = Field(default_factory=list, description="Ids of the triggers that fired")
    queue: Label | None = None
    segment: Label | None = None
    conversation_started_at: AwareDatetime | None = Field(
        default=None, description="The conversation's first message; the stored start when unset"
    )


class PickupRecord(_EscalationStage):
    agent_id: Id
    picked_up_at: AwareDatetime
    escalated_at: AwareDatetime


class ResolutionRecord(_EscalationStage):
    agent_id: Id
    resolved_at: AwareDatetime
    necessary: bool = Field(description="The agent's disposition: was the escalation needed?")
    csat: int | None = Field(default=None, ge=1, le=5)
    handback: bool = False


class ConversationEndRecord(_Record):
    conversation_id: Id
    closed_at: AwareDatetime
    outcome: ClosedOutcome
    customer_messages: int = Field(ge=0)
    closed_reason: Label | None = None
    segment: Label | None = None
    tier: Label | None = None
    conversation_csat: int | None = Field(default=None, ge=1, le=5)


class IncidentRecord(_Record):
    id: Id = Field(description="Stable per incident: the operations workflow id and its declaration number")
    description: Annotated[str, Field(min_length=1, max_length=300)]
    started_at: AwareDatetime
    ended_at: AwareDatetime | None = None
    declared_by: Label | None = None


class ReviewLabelRecord(_Record):
    escalation_id: Annotated[str, Field(min_length=3, max_length=2 * ID_LENGTH + 1)]
    reviewer: Id
    necessary: bool
    labelled_at: AwareDatetime
    note: str | None = None


def escalation_id(conversation_id: str, message_id: str) -> str:
    return f"{conversation_id}:{message_id}"


def conversation_outcome(escalated: bool, closed_reason: str | None) -> ClosedOutcome:
    """How a closed conversation ended: escalated at any point, else abandoned (by close reason), else bot-resolved."""
    if escalated:
        return "escalated"
    if closed_reason is not None and closed_reason.strip().lower() in ABANDONED_REASONS:
        return "abandoned"
    return "bot_resolved"

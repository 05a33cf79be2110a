"""Idempotent writes of a conversation's milestones, one function per stage.

Each function takes one pydantic record and upserts with INSERT .. ON CONFLICT DO
UPDATE, so a retried call lands on the same row and never counts twice. Rows are
keyed by ``conversation_id`` and by the escalation id
``"<conversation_id>:<escalating message_id>"``.

Stages may arrive in any order (a record whose activity kept failing can land
after a later one), so each stage writes only what it knows, under two rules:

- a stage's *own* columns take its new value, but ``None`` never erases a value;
- columns *borrowed* from another stage (the pickup's ``escalated_at``, the
  resolution's ``agent_id``, the conversation facts an escalation carries) only
  fill a gap and never overwrite.

So ``record_pickup`` after ``record_resolution`` keeps ``resolved_at``, and a pickup
recorded before its escalation creates the escalation row with what it knows; the
escalation record fills in the rest when it arrives. A conversation row is created
as a stub by whichever stage comes first.

The functions run statements on the caller's session and do not commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from baton.store.models import CHANNEL_LENGTH, ID_LENGTH, LABEL_LENGTH, Conversation, Escalation, Incident, ReviewLabel
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else max((later - earlier).total_seconds(), 0.0)


# --- upserts ------------------------------------------------------------------------------------------


async def _upsert(
    session: AsyncSession,
    table: Table,
    keys: list[str],
    values: dict[str, Any],
    own: tuple[str, ...] = (),
    fill: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
) -> None:
    """INSERT ``values``; on a key conflict, update ``own`` columns (None keeps the old value), fill ``fill`` gaps
    and overwrite ``replace`` columns outright."""
    dialect = (await session.connection()).dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {dialect}")
    statement = insert.values(**values)
    new, old = statement.excluded, table.c
    updates = {name: func.coalesce(new[name], old[name]) for name in own}
    updates |= {name: func.coalesce(old[name], new[name]) for name in fill}
    updates |= {name: new[name] for name in replace}
    updates = {name: value for name, value in updates.items() if name in values and name not in keys}
    if updates:
        statement = statement.on_conflict_do_update(index_elements=keys, set_=updates)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=keys)
    await session.execute(statement)


async def _ensure_conversation(session: AsyncSession, conversation_id: str, **known: Any) -> None:
    """The conversation row, created as a stub if no stage has written it yet; ``known`` fills only gaps."""
    values = {"conversation_id": conversation_id, **{k: v for k, v in known.items() if v is not None}}
    await _upsert(session, Conversation.__table__, ["conversation_id"], values, fill=tuple(values))


async def record_conversation_start(session: AsyncSession, record: ConversationStartRecord) -> None:
    # A conversation starts once: every start column only fills a gap (a continued run or a retry changes nothing).
    values = record.model_dump()
    await _upsert(session, Conversation.__table__, ["conversation_id"], values, fill=tuple(values))


async def record_escalation(session: AsyncSession, record: EscalationRecord) -> None:
    started_at = record.conversation_started_at
    await _ensure_conversation(
        session,
        record.conversation_id,
        customer_id=record.customer_id,
        channel=record.channel,
        started_at=started_at,
        segment=record.segment,
    )
    if started_at is None:
        started_at = await session.scalar(
            select(Conversation.started_at).where(Conversation.conversation_id == record.conversation_id)
        )
    values = {
        "id": record.escalation_id,
        "conversation_id": record.conversation_id,
        "message_id": record.message_id,
        "customer_id": record.customer_id,
        "segment": record.segment,
        "channel": record.channel,
        "urgency": record.urgency,
        "triggers": record.triggers,
        "queue": record.queue,
        "escalated_at": record.escalated_at,
        "messages_to_escalation": record.messages_to_escalation,
        "seconds_to_escalation": _seconds(record.escalated_at, started_at),
    }
    # Recording again (urgency raised, routing widened) updates the escalation's own facts, never the later stages'.
    own = tuple(name for name in values if name not in ("id", "conversation_id", "message_id"))
    await _upsert(session, Escalation.__table__, ["id"], values, own=own)


async def record_pickup(session: AsyncSession, record: PickupRecord) -> None:
    await _ensure_conversation(session, record.conversation_id)
    values = {
        "id": record.escalation_id,
        "conversation_id": record.conversation_id,
        "message_id": record.message_id,
        "agent_id": record.agent_id,
        "picked_up_at": record.picked_up_at,
        "seconds_to_pickup": _seconds(record.picked_up_at, record.escalated_at),
        "escalated_at": record.escalated_at,
    }
    await _upsert(
        session,
        Escalation.__table__,
        ["id"],
        values,
        own=("agent_id", "picked_up_at", "seconds_to_pickup"),
        fill=("escalated_at",),
    )


async def record_resolution(session: AsyncSession, record: ResolutionRecord) -> None:
    await _ensure_conversation(session, record.conversation_id)
    values = {
        "id": record.escalation_id,
        "conversation_id": record.conversation_id,
        "message_id": record.message_id,
        "agent_id": record.agent_id,
        "resolved_at": record.resolved_at,
        "necessary": record.necessary,
        "csat": record.csat,
        "handback": record.handback,
    }
    await _upsert(
        session,
        Escalation.__table__,
        ["id"],
        values,
        own=("resolved_at", "necessary", "csat", "handback"),
        fill=("agent_id",),
    )


async def record_conversation_end(session: AsyncSession, record: ConversationEndRecord) -> None:
    values = record.model_dump()
    own = tuple(name for name in values if name != "conversation_id")
    await _upsert(session, Conversation.__table__, ["conversation_id"], values, own=own)


async def record_review_label(session: AsyncSession, record: ReviewLabelRecord) -> None:
    """One label per escalation and reviewer: labelling again replaces the verdict, its note and its time."""
    values = record.model_dump()
    await _upsert(
        session,
        ReviewLabel.__table__,
        ["escalation_id", "reviewer"],
        values,
        replace=("necessary", "note", "labelled_at"),
    )


async def record_incident(session: AsyncSession, record: IncidentRecord) -> None:
    # Declared once, ended later: the end only fills its own column and never erases the start.
    values = record.model_dump()
    await _upsert(
        session,
        Incident.__table__,
        ["id"],
        values,
        own=("ended_at",),
        fill=("description", "started_at", "declared_by"),
    )

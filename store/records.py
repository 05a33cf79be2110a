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

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from baton.contract.records import (
    ConversationEndRecord,
    ConversationStartRecord,
    EscalationRecord,
    Id,
    IncidentRecord,
    PickupRecord,
    ResolutionRecord,
    ReviewLabelRecord,
)
from baton.domain.redaction import redact
from baton.store.models import Conversation, Escalation, Incident, MissedLabel, ReviewLabel


class MissedLabelRecord(BaseModel):
    """A missed escalation: the conversation should have been handed off from the customer message
    ``message_id``. Written by apps only (the CLI, the gateway), never by a workflow."""

    conversation_id: Id
    message_id: Id
    reviewer: Id
    labelled_at: AwareDatetime
    source: Literal["review", "agent"] = "review"
    note: Annotated[str, Field(max_length=2000)] | None = None


def _seconds(later: datetime, earlier: datetime | None) -> float | None:
    return None if earlier is None else max((later - earlier).total_seconds(), 0.0)


def _redacted(values: dict[str, Any], column: str) -> dict[str, Any]:
    """The store keeps no personal data: free text (a reviewer's note, an incident's description, which may
    quote a customer) is written with emails, phones, cards, IBANs and SSNs replaced (domain/redaction.py)."""
    text = values.get(column)
    return {**values, column: redact(text)} if isinstance(text, str) else values


# --- upserts ------------------------------------------------------------------------------------------


async def _upsert(
    session: AsyncSession,
    table: Table,
    keys: list[str],
    values: dict[str, Any] | list[dict[str, Any]],
    own: tuple[str, ...] = (),
    fill: tuple[str, ...] = (),
    replace: tuple[str, ...] = (),
) -> None:
    """INSERT ``values`` (one row, or several with the same columns and distinct keys); on a key conflict, update
    ``own`` columns (None keeps the old value), fill ``fill`` gaps and overwrite ``replace`` columns outright."""
    dialect = (await session.connection()).dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert(table)
    elif dialect == "sqlite":
        insert = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {dialect}")
    statement = insert.values(values) if isinstance(values, list) else insert.values(**values)
    columns = values[0] if isinstance(values, list) else values
    new, old = statement.excluded, table.c
    updates = {name: func.coalesce(new[name], old[name]) for name in own}
    updates |= {name: func.coalesce(old[name], new[name]) for name in fill}
    updates |= {name: new[name] for name in replace}
    updates = {name: value for name, value in updates.items() if name in columns and name not in keys}
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
    await record_conversation_starts(session, [record])


async def record_conversation_starts(session: AsyncSession, starts: list[ConversationStartRecord]) -> None:
    """Conversations' rows in one statement. A conversation starts once: every start column only fills a gap (a
    continued run or a retry changes nothing), and of two records of one conversation the first counts."""
    rows: dict[str, dict[str, Any]] = {}
    for record in starts:
        rows.setdefault(record.conversation_id, record.model_dump())
    if rows:
        values = list(rows.values())
        await _upsert(session, Conversation.__table__, ["conversation_id"], values, fill=tuple(values[0]))


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
    values = _redacted(record.model_dump(), "note")
    await _upsert(
        session,
        ReviewLabel.__table__,
        ["escalation_id", "reviewer"],
        values,
        replace=("necessary", "note", "labelled_at"),
    )


async def record_incident(session: AsyncSession, record: IncidentRecord) -> None:
    # Declared once, ended later: the end only fills its own column and never erases the start.
    values = _redacted(record.model_dump(), "description")
    await _upsert(
        session,
        Incident.__table__,
        ["id"],
        values,
        own=("ended_at",),
        fill=("description", "started_at", "declared_by"),
    )


async def record_conversation_csat(session: AsyncSession, conversation_id: str, csat: int) -> None:
    """A customer's rating of the whole conversation, which may come after it closed (a helpdesk's survey):
    the newest rating wins; the row is created as a stub if no stage has written it yet."""
    values = {"conversation_id": conversation_id, "conversation_csat": csat}
    await _upsert(session, Conversation.__table__, ["conversation_id"], values, own=("conversation_csat",))


async def record_missed_label(session: AsyncSession, record: MissedLabelRecord) -> None:
    """One missed label per conversation and reviewer: labelling again replaces the message, note and time.
    The conversation row is created as a stub when no stage has written it yet (an agent may mark it first)."""
    await _ensure_conversation(session, record.conversation_id)
    values = _redacted(record.model_dump(), "note")
    await _upsert(
        session,
        MissedLabel.__table__,
        ["conversation_id", "reviewer"],
        values,
        replace=("message_id", "source", "note", "labelled_at"),
    )

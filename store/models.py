"""Tables of the store (SQLAlchemy 2 typed declarative), portable across SQLite and PostgreSQL.

Timestamps are stored in UTC and always read back timezone-aware (see ``UTCDateTime``).
The schema is created and changed only by the Alembic migrations; keep them in step
with these models (tests/test_store.py compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from baton.contract.records import CHANNEL_LENGTH, ESCALATION_ID_LENGTH, ID_LENGTH, LABEL_LENGTH

Outcome = Literal["open", "bot_resolved", "escalated", "abandoned"]
OUTCOMES: tuple[str, ...] = ("open", "bot_resolved", "escalated", "abandoned")

# Stable constraint names, so later migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every database.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are
    converted to UTC and stored naive, then marked UTC again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: store timezone-aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONList = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONList, list[str]: JSONList}


class Conversation(Base):
    """One support conversation. A row may exist before its start is recorded (a stub made by a later stage)."""

    __tablename__ = "conversations"

    conversation_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    segment: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    tier: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    policy_name: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    started_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    outcome: Mapped[str] = mapped_column(String(20), default="open", server_default="open")
    customer_messages: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversation_csat: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint(f"outcome IN ({', '.join(repr(o) for o in OUTCOMES)})", name="outcome"),
        CheckConstraint("conversation_csat BETWEEN 1 AND 5", name="conversation_csat"),
        Index(None, "started_at"),
        Index(None, "segment", "started_at"),
    )


class Escalation(Base):
    """One escalation to a human, from the decision to its resolution.

    ``id`` is ``"<conversation_id>:<escalating message_id>"``: a retried record lands on the same row.
    """

    __tablename__ = "escalations"

    id: Mapped[str] = mapped_column(String(ESCALATION_ID_LENGTH), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("conversations.conversation_id", ondelete="CASCADE")
    )
    message_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    customer_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    segment: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    channel: Mapped[str | None] = mapped_column(String(CHANNEL_LENGTH))
    urgency: Mapped[str | None] = mapped_column(String(20))
    triggers: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    queue: Mapped[str | None] = mapped_column(String(LABEL_LENGTH))
    escalated_at: Mapped[datetime | None]
    messages_to_escalation: Mapped[int | None] = mapped_column(Integer)
    seconds_to_escalation: Mapped[float | None] = mapped_column(Float)
    picked_up_at: Mapped[datetime | None]
    seconds_to_pickup: Mapped[float | None] = mapped_column(Float)
    agent_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    resolved_at: Mapped[datetime | None]
    necessary: Mapped[bool | None] = mapped_column(Boolean)
    csat: Mapped[int | None] = mapped_column(SmallInteger)
    handback: Mapped[bool | None] = mapped_column(Boolean)

    __table_args__ = (
        CheckConstraint("urgency IN ('immediate', 'queued')", name="urgency"),
        CheckConstraint("csat BETWEEN 1 AND 5", name="csat"),
        Index(None, "conversation_id"),
        Index(None, "escalated_at"),
        Index(None, "segment", "escalated_at"),
    )


class Incident(Base):
    """A declared surge incident (an outage, a bad release), for reporting escalations in its window."""

    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    description: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    declared_by: Mapped[str | None] = mapped_column(String(ID_LENGTH))

    __table_args__ = (Index(None, "started_at"),)


class ReviewLabel(Base):
    """A reviewer's verdict on whether an escalation was necessary (false-positive review); one per reviewer."""

    __tablename__ = "review_labels"

    escalation_id: Mapped[str] = mapped_column(
        String(ESCALATION_ID_LENGTH), ForeignKey("escalations.id", ondelete="CASCADE"), primary_key=True
    )
    reviewer: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    necessary: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    labelled_at: Mapped[datetime]

    __table_args__ = (Index(None, "labelled_at"),)


class MissedLabel(Base):
    """A conversation that should have been handed off, and from which customer message (a missed escalation);
    one per conversation and reviewer. Marked by a reviewer (`baton review label --missed`) or by the agent
    who got it late (the gateway's ``/missed``)."""

    __tablename__ = "missed_labels"

    conversation_id: Mapped[str] = mapped_column(
        String(ID_LENGTH), ForeignKey("conversations.conversation_id", ondelete="CASCADE"), primary_key=True
    )
    reviewer: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    source: Mapped[str] = mapped_column(String(20), default="review", server_default="review")
    note: Mapped[str | None] = mapped_column(Text)
    labelled_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint("source IN ('review', 'agent')", name="source"),
        Index(None, "labelled_at"),
    )


class ApiKey(Base):
    """An integration's gateway API key (docs/security.md). Only a SHA-256 of the key is kept: the key itself
    is shown once, when it is made. A revoked key stays listed, with the time it was revoked."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    scopes: Mapped[list[str]] = mapped_column(default=list, server_default=text("'[]'"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "name"),)

"""What `baton report` and `baton review` read from the store: a month's conversations and escalations.

The store's modules (SQLAlchemy, Alembic) are imported where they are used, so that building the CLI's parser
stays fast for every other command.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from baton.apps.report.months import Month

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


class ReportError(Exception):
    """Bad input or an unusable store; the CLI prints it and exits 2."""


@dataclass
class ConversationFacts:
    conversation_id: str
    at: datetime  # the start, or the close when the start was never recorded
    segment: str | None = None
    channel: str | None = None
    outcome: str = "open"
    csat: int | None = None  # conversations.conversation_csat


@dataclass
class EscalationFacts:
    id: str
    conversation_id: str
    escalated_at: datetime | None = None
    segment: str | None = None
    channel: str | None = None
    urgency: str | None = None
    triggers: tuple[str, ...] = ()
    messages_to_escalation: int | None = None
    seconds_to_escalation: float | None = None
    picked_up_at: datetime | None = None
    seconds_to_pickup: float | None = None
    resolved_at: datetime | None = None
    necessary: bool | None = None  # the agent's disposition
    csat: int | None = None
    review: bool | None = None  # the newest review label
    reviewer: str | None = None
    review_note: str | None = None

    @property
    def verdict(self) -> bool | None:
        """Was the escalation necessary: the newest review label overrides the agent's disposition."""
        return self.review if self.review is not None else self.necessary


@dataclass
class MissedFacts:
    """A missed escalation: the conversation should have been handed off from the customer message
    ``message_id`` (the newest missed label of the conversation)."""

    conversation_id: str
    message_id: str
    reviewer: str
    source: str = "review"
    note: str | None = None


@dataclass
class MonthData:
    month: Month
    conversations: list[ConversationFacts] = field(default_factory=list)
    escalations: list[EscalationFacts] = field(default_factory=list)
    missed: list[MissedFacts] = field(default_factory=list)

    def escalations_by_conversation(self) -> dict[str, list[EscalationFacts]]:
        by: dict[str, list[EscalationFacts]] = defaultdict(list)
        for e in self.escalations:
            by[e.conversation_id].append(e)
        return by


async def load_months(session: AsyncSession, months: Sequence[Month]) -> dict[Month, MonthData]:
    """The conversations of each month, with their escalations and review labels."""
    from sqlalchemy import func, select

    from baton.store.models import Conversation, Escalation, MissedLabel, ReviewLabel

    data = {m: MonthData(m) for m in months}
    if not months:
        return data
    first, last = min(months).start, max(months).end
    at = func.coalesce(Conversation.started_at, Conversation.closed_at)  # the conversation's month
    anchor = at.label("anchor")
    in_range = (at >= first) & (at < last)
    month_of: dict[str, Month] = {}
    rows = await session.execute(select(Conversation, anchor).where(in_range))
    for conv, at in rows:
        month = Month.containing(at)
        if month not in data:
            continue
        month_of[conv.conversation_id] = month
        data[month].conversations.append(
            ConversationFacts(
                conversation_id=conv.conversation_id,
                at=at,
                segment=conv.segment,
                channel=conv.channel,
                outcome=conv.outcome,
                csat=conv.conversation_csat,
            )
        )
    escalations: dict[str, EscalationFacts] = {}
    rows = await session.execute(
        select(Escalation)
        .join(Conversation, Escalation.conversation_id == Conversation.conversation_id)
        .where(in_range)
    )
    for (e,) in rows:
        month = month_of.get(e.conversation_id)
        if month is None:
            continue
        facts = EscalationFacts(
            id=e.id,
            conversation_id=e.conversation_id,
            escalated_at=e.escalated_at,
            segment=e.segment,
            channel=e.channel,
            urgency=e.urgency,
            triggers=tuple(dict.fromkeys(e.triggers or ())),
            messages_to_escalation=e.messages_to_escalation,
            seconds_to_escalation=e.seconds_to_escalation,
            picked_up_at=e.picked_up_at,
            seconds_to_pickup=e.seconds_to_pickup,
            resolved_at=e.resolved_at,
            necessary=e.necessary,
            csat=e.csat,
        )
        escalations[e.id] = facts
        data[month].escalations.append(facts)
    labels = await session.execute(
        select(ReviewLabel)
        .join(Escalation, ReviewLabel.escalation_id == Escalation.id)
        .join(Conversation, Escalation.conversation_id == Conversation.conversation_id)
        .where(in_range)
        .order_by(ReviewLabel.labelled_at, ReviewLabel.reviewer)
    )
    for (label,) in labels:  # oldest first: the newest label wins
        facts = escalations.get(label.escalation_id)
        if facts is not None:
            facts.review, facts.reviewer, facts.review_note = label.necessary, label.reviewer, label.note
    missed: dict[str, MissedFacts] = {}
    rows = await session.execute(
        select(MissedLabel)
        .join(Conversation, MissedLabel.conversation_id == Conversation.conversation_id)
        .where(in_range)
        .order_by(MissedLabel.labelled_at, MissedLabel.reviewer)
    )
    for (m,) in rows:  # oldest first: the newest label of a conversation wins
        missed[m.conversation_id] = MissedFacts(m.conversation_id, m.message_id, m.reviewer, m.source, m.note)
    for conversation_id, facts in sorted(missed.items()):
        month = month_of.get(conversation_id)
        if month is not None:
            data[month].missed.append(facts)
    for month_data in data.values():
        _fill_conversation_facts(month_data)
        month_data.conversations.sort(key=lambda c: (c.at, c.conversation_id))
        month_data.escalations.sort(key=lambda e: (e.escalated_at or month_data.month.start, e.id))
    return data


def _fill_conversation_facts(data: MonthData) -> None:
    """A conversation with no segment or channel of its own (still open, or a stub) takes its escalation's."""
    by_conversation = data.escalations_by_conversation()
    for conv in data.conversations:
        for e in by_conversation.get(conv.conversation_id, ()):
            conv.segment = conv.segment or e.segment
            conv.channel = conv.channel or e.channel


# --- the store ------------------------------------------------------------------------------------------


async def check_store(engine: AsyncEngine) -> None:
    """Refuse a database without Baton's schema, or behind the newest migration."""
    from baton.store.database import current_revision, head_revision

    async with engine.connect() as connection:
        revision = await connection.run_sync(current_revision)
    if revision is None:
        raise ReportError("the store has no schema yet; run `baton db upgrade` first")
    head = head_revision()
    if revision != head:
        raise ReportError(f"the store is at migration {revision}, not {head}; run `baton db upgrade` first")


def check_sqlite_exists(url: str) -> None:
    """Opening a missing SQLite file would create an empty one: say so instead."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return
    if not Path(database).expanduser().exists():
        raise ReportError(f"no store at {database}; check --database-url, or create it with `baton db upgrade`")


@asynccontextmanager
async def store_session(
    url: str, engine: AsyncEngine | None = None, begin: bool = False
) -> AsyncIterator[AsyncSession]:
    """A session on a checked, migrated store; the engine is created and disposed here unless one is given."""
    from baton.store.database import create_engine, session_factory

    own = engine is None
    if own:
        check_sqlite_exists(url)
        engine = create_engine(url)
    assert engine is not None
    try:
        await check_store(engine)
        sessions = session_factory(engine)
        async with sessions.begin() if begin else sessions() as session:
            yield session
    finally:
        if own:
            await engine.dispose()

"""The JSONL `baton replay` reads: one conversation per line, validated before anything runs, and its timeline.

Each conversation's timeline is rebased onto the test server's clock: message gaps are kept (skipped, not
waited), and the customer's dates (account creation, renewal) are shifted by the same amount so that
lifecycle rules see the account as it was when the conversation happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from baton.apps.replay.records import ReplayLabel
from baton.contract.messages import CustomerFacts, Role

CUSTOMER_GAP = timedelta(seconds=20)
BOT_GAP = timedelta(seconds=2)
TYPING_SECONDS_PER_CHAR = 0.2
MAX_TYPING = timedelta(seconds=100)


class ReplayCustomer(CustomerFacts):
    model_config = ConfigDict(extra="allow")
    id: str = Field(min_length=1)


class ReplayMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Role
    text: str
    at: datetime | None = None


class ReplayConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    conversation_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:\-]+$")
    customer: ReplayCustomer
    channel: str = "chat"
    started_at: datetime | None = None
    messages: list[ReplayMessage] = Field(min_length=1)
    label: ReplayLabel | None = None


class ReplayInputError(ValueError):
    pass


class TranscriptMessage(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def at(self) -> datetime | None: ...


class Transcript(Protocol):
    """What the replay reads of a conversation: a `ReplayConversation`, or a `baton policy tune` line (which
    carries each customer message's recorded scores as well)."""

    @property
    def conversation_id(self) -> str: ...
    @property
    def customer(self) -> ReplayCustomer: ...
    @property
    def channel(self) -> str: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def messages(self) -> Sequence[TranscriptMessage]: ...
    @property
    def label(self) -> ReplayLabel | None: ...


class _Conversation(Protocol):
    conversation_id: str


C = TypeVar("C", bound=_Conversation)


def validate_lines(lines: Iterable[str], source: str, model: type[C]) -> tuple[list[C], list[str]]:
    """Every JSONL line validated as `model`: the conversations, and the problems naming line and field."""
    conversations: list[C] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            conv = model.model_validate_json(line)  # type: ignore[attr-defined]
        except ValidationError as err:
            for e in err.errors():
                field = ".".join(str(p) for p in e["loc"]) or "(line)"
                problems.append(f"{source}:{number}: {field}: {e['msg']}")
            continue
        if conv.conversation_id in seen:
            problems.append(f"{source}:{number}: conversation_id: duplicate '{conv.conversation_id}'")
        seen.add(conv.conversation_id)
        conversations.append(conv)
    return conversations, problems


def read_transcripts(lines: Iterable[str], source: str) -> list[ReplayConversation]:
    """Parse and validate every line before anything runs; errors name line and field."""
    conversations, problems = validate_lines(lines, source, ReplayConversation)
    if problems:
        raise ReplayInputError("\n".join(problems))
    return conversations


def message_times(conv: Transcript) -> list[timedelta]:
    """Offsets of each message from the conversation's start, realistic where `at` is missing."""
    origin = conv.started_at or next((m.at for m in conv.messages if m.at is not None), None)
    offsets: list[timedelta] = []
    previous = timedelta(0)
    for i, m in enumerate(conv.messages):
        if m.at is not None and origin is not None:
            offset = max(previous, m.at - origin)
        elif i == 0:
            offset = timedelta(0)
        elif m.role == "customer":
            typing = min(MAX_TYPING, timedelta(seconds=len(m.text) * TYPING_SECONDS_PER_CHAR))
            offset = previous + CUSTOMER_GAP + typing
        else:
            offset = previous + BOT_GAP
        offsets.append(offset)
        previous = offset
    return offsets


def _shift_date(value: date | None, days: int) -> date | None:
    return None if value is None else value + timedelta(days=days)


def rebase_customer(conv: Transcript, replay_now: datetime) -> CustomerFacts:
    facts = CustomerFacts.model_validate(conv.customer.model_dump(exclude={"id"}))
    if conv.started_at is None:
        return facts
    days = (replay_now.date() - conv.started_at.date()).days
    return facts.model_copy(
        update={
            "account_created_at": _shift_date(facts.account_created_at, days),
            "renewal_date": _shift_date(facts.renewal_date, days),
            "last_escalation_at": facts.last_escalation_at + timedelta(days=days) if facts.last_escalation_at else None,
        }
    )

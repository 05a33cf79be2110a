"""The conversations `baton audit` reads: Baton's own export or a helpdesk export, one JSON object a line.

A line with a `customer` object is Baton's export (`baton export`, the replay JSONL of
apps/replay/transcripts.py: its label says whether Baton escalated, or that a reviewer marked the
conversation a missed escalation); any other line is the helpdesk shape (docs/audit.md):

    {"conversation_id": "hd-1", "messages": [{"role": "customer", "text": "...", "time": "2026-10-01T08:00:00Z"}],
     "csat": 2, "agent_took_over": true, "abandoned": false, "bot_escalated": false}

Both become a ``PastConversation``. Every line is checked before anything is scored, and every problem is
named by file, line and field, so a bad export fails at once and whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from baton.apps.replay.transcripts import ReplayConversation

Shape = Literal["helpdesk", "baton"]
CSAT_MIN, CSAT_MAX = 1.0, 5.0


class AuditInputError(ValueError):
    """The file cannot be audited; `problems` holds one line per error, each naming line and field."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class HelpdeskMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["customer", "bot", "agent"]
    text: str
    time: datetime | None = None


class HelpdeskConversation(BaseModel):
    """One line of a helpdesk export (docs/audit.md)."""

    model_config = ConfigDict(extra="ignore")
    conversation_id: str = Field(min_length=1, max_length=200)
    messages: list[HelpdeskMessage] = Field(min_length=1)
    csat: float | None = Field(default=None, ge=CSAT_MIN, le=CSAT_MAX, description="1 (worst) to 5 (best)")
    agent_took_over: bool = Field(default=False, description="A person answered in the conversation")
    bot_escalated: bool = Field(default=False, description="The bot handed the conversation over itself")
    abandoned: bool = Field(default=False, description="The customer left without an answer")
    channel: str = "chat"


class BatonExtras(BaseModel):
    """Outcome fields a Baton export line may carry beside the transcript (from a chat backend's survey)."""

    model_config = ConfigDict(extra="ignore")
    csat: float | None = Field(default=None, ge=CSAT_MIN, le=CSAT_MAX)
    agent_took_over: bool = False
    abandoned: bool = False


@dataclass(frozen=True)
class PastMessage:
    role: Literal["customer", "bot", "agent"]
    text: str
    at: datetime | None = None


@dataclass(frozen=True)
class PastConversation:
    conversation_id: str
    shape: Shape
    messages: tuple[PastMessage, ...]
    csat: float | None
    agent_took_over: bool
    bot_escalated: bool
    abandoned: bool
    channel: str = "chat"
    missed: bool = False  # a reviewer or agent said it should have been handed over (Baton's missed label)

    @property
    def bot_part(self) -> tuple[PastMessage, ...]:
        """The messages before a person first answered: what the bot (and Baton) saw and could act on."""
        for index, message in enumerate(self.messages):
            if message.role == "agent":
                return self.messages[:index]
        return self.messages

    @property
    def customer_texts(self) -> list[str]:
        texts = [m.text for m in self.bot_part if m.role == "customer" and m.text.strip()]
        # A customer who wrote only after the agent joined still says what the conversation was about.
        return texts or [m.text for m in self.messages if m.role == "customer" and m.text.strip()]

    @property
    def turns(self) -> int:
        """Back-and-forth turns with the bot: customer messages before a person answered."""
        return sum(1 for m in self.bot_part if m.role == "customer")


def _problems(source: str, number: int, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(line)"
        out.append(f"{source}:{number}: {field}: {e['msg']}")
    return out


def _from_helpdesk(line: HelpdeskConversation) -> PastConversation:
    messages = tuple(PastMessage(m.role, m.text, m.time) for m in line.messages)
    return PastConversation(
        conversation_id=line.conversation_id,
        shape="helpdesk",
        messages=messages,
        csat=line.csat,
        # An agent's message is proof enough that a person took over, whatever the flag says.
        agent_took_over=line.agent_took_over or any(m.role == "agent" for m in messages),
        bot_escalated=line.bot_escalated,
        abandoned=line.abandoned,
        channel=line.channel,
    )


def _from_baton(line: ReplayConversation, extras: BatonExtras) -> PastConversation:
    messages = tuple(PastMessage(m.role, m.text, m.at) for m in line.messages)
    # `escalate: true` is Baton's own escalation judged necessary, unless the label says it was missed
    # (never escalated, or too late: apps/export.py's label rule).
    missed = line.label is not None and (line.label.model_extra or {}).get("missed") is True
    escalated = line.label is not None and line.label.escalate is True and not missed
    return PastConversation(
        conversation_id=line.conversation_id,
        shape="baton",
        messages=messages,
        csat=extras.csat,
        agent_took_over=extras.agent_took_over or any(m.role == "agent" for m in messages),
        bot_escalated=escalated,
        abandoned=extras.abandoned,
        channel=line.channel,
        missed=missed,
    )


def parse_line(raw: dict[str, Any]) -> PastConversation:
    """One decoded line as a conversation; raises ValidationError naming the field."""
    if isinstance(raw.get("customer"), dict):
        return _from_baton(ReplayConversation.model_validate(raw), BatonExtras.model_validate(raw))
    return _from_helpdesk(HelpdeskConversation.model_validate(raw))


def read_conversations(lines: Iterable[str], source: str) -> list[PastConversation]:
    """Every line checked before anything is scored; raises AuditInputError listing every problem."""
    conversations: list[PastConversation] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            problems.append(f"{source}:{number}: (line): not JSON: {err.msg} at column {err.colno}")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{source}:{number}: (line): a conversation must be a JSON object")
            continue
        try:
            conversation = parse_line(raw)
        except ValidationError as err:
            problems.extend(_problems(source, number, err))
            continue
        if conversation.conversation_id in seen:
            problems.append(f"{source}:{number}: conversation_id: duplicate '{conversation.conversation_id}'")
        seen.add(conversation.conversation_id)
        conversations.append(conversation)
    if problems:
        raise AuditInputError(problems)
    if not conversations:
        raise AuditInputError([f"{source}: no conversations (an empty file)"])
    return conversations


def read_file(path: Path) -> list[PastConversation]:
    try:
        with path.open(encoding="utf-8") as handle:
            return read_conversations(handle, str(path))
    except OSError as err:
        raise AuditInputError([f"{path}: cannot read: {err.strerror or err}"]) from err
    except UnicodeDecodeError as err:
        raise AuditInputError([f"{path}: not UTF-8 text ({err.reason} at byte {err.start})"]) from err

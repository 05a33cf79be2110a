"""The labelled conversations `baton policy tune` reads: replay lines whose customer messages carry the scores
the classifier recorded for them (``baton export`` writes them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from baton.apps.replay.records import ReplayLabel
from baton.apps.replay.transcripts import ReplayCustomer, validate_lines
from baton.contract.messages import Role, Signals


class TuneInputError(ValueError):
    """The labels file cannot be used; the message names file, line and field."""


class ScoredMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    message_id: str | None = None
    role: Role
    text: str
    at: datetime | None = None
    signals: Signals | None = None

    @model_validator(mode="after")
    def _customer_messages_carry_scores(self) -> ScoredMessage:
        if self.role == "customer" and self.signals is None:
            raise ValueError("signals: a customer message needs the scores recorded for it (a `baton export` line)")
        return self


class ScoredConversation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    conversation_id: str = Field(min_length=1)
    customer: ReplayCustomer
    channel: str = "chat"
    started_at: datetime | None = None
    messages: list[ScoredMessage] = Field(min_length=1)
    label: ReplayLabel | None = None

    @property
    def labelled(self) -> bool:
        return self.label is not None and self.label.labelled


def read_scored(lines: Iterable[str], source: str) -> list[ScoredConversation]:
    """Every line validated first; errors name line and field. Raises TuneInputError."""
    conversations, problems = validate_lines(lines, source, ScoredConversation)
    if problems:
        more = f"\n... {len(problems) - 20} more" if len(problems) > 20 else ""
        raise TuneInputError("\n".join(problems[:20]) + more)
    if not any(c.labelled for c in conversations):
        raise TuneInputError(f"{source}: no labelled conversation (a line's `label` gives `escalate`)")
    return conversations

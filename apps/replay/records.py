"""The record `baton replay` prints for each conversation, typed: ``ReplayRecord`` and its parts.

A record is built once, when its conversation's replay ends, and printed as one JSON line
(``ReplayRecord.json_line()``) with the keys and the order the replay has always printed:

    conversation_id, escalated, urgency, at_message, triggers, decisions,
    then for an escalated conversation messages_to_escalation, seconds_to_escalation, and, when the workflow
    replayed it, handoff_message, note_summary, note_source; for a labelled one its label (without empty fields).

A decision is logged for each customer message ({message_index, action, urgency, signals}); a message the
workflow rejected gets {message_index, action: "rejected", error}. The same model reads saved records back
(``ReplayRecord.model_validate``), so that baton.apps.evaluation can measure a saved `--output` file.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    field_validator,
    model_serializer,
)

# Printed only for an escalated conversation, in this order; the handoff's only when the workflow wrote them.
HANDOFF_FIELDS = ("handoff_message", "note_summary", "note_source")
ESCALATION_FIELDS = (
    "messages_to_escalation",
    "seconds_to_escalation",
    "handoff_message",
    "note_summary",
    "note_source",
)


class ReplayLabel(BaseModel):
    """What a support lead says should have happened: escalate or not, with which urgency and triggers."""

    model_config = ConfigDict(extra="allow")
    escalate: bool | None = None
    urgency: str | None = None
    # A missed escalation (`baton export` of a `--missed` label): the index of the message it should have been
    # handed off from; an escalation after it is a miss (apps/evaluation.py).
    from_message: int | None = Field(default=None, ge=0)
    # Other fields (`triggers`, notes) are kept as given, in their order, and printed back with the record.

    @property
    def labelled(self) -> bool:
        return self.escalate is not None

    @property
    def expected_triggers(self) -> list[str]:
        """The ids of the triggers the label expects to fire (its `triggers`)."""
        return list((self.model_extra or {}).get("triggers") or [])

    def printed(self) -> dict[str, Any]:
        """As the record prints it: the fields that are set, extra ones included."""
        return self.model_dump(exclude_none=True)


class FiredTrigger(BaseModel):
    id: str
    category: str | None = None  # always set by the replay; absent from records that list bare ids


class DecisionSignals(BaseModel):
    sentiment: float
    frustration: float
    intents: list[str]


class MessageDecision(BaseModel):
    """The workflow's decision on one customer message."""

    message_index: int
    action: str
    urgency: str | None = None
    signals: DecisionSignals | None = None


class RejectedMessage(BaseModel):
    """A message the workflow refused (its update failed), with the reason."""

    message_index: int
    action: Literal["rejected"] = "rejected"
    error: str


def _decision_kind(value: Any) -> str:
    action = value.get("action") if isinstance(value, dict) else getattr(value, "action", None)
    return "rejected" if action == "rejected" else "decision"


DecisionEntry = Annotated[
    Annotated[MessageDecision, Tag("decision")] | Annotated[RejectedMessage, Tag("rejected")],
    Discriminator(_decision_kind),
]


class ReplayRecord(BaseModel):
    """One replayed conversation: what the policy decided, when, and on which triggers."""

    model_config = ConfigDict(extra="ignore")
    conversation_id: str
    escalated: bool
    urgency: str | None = None
    at_message: int | None = None  # the index of the escalating message in the transcript
    triggers: list[FiredTrigger] = []
    decisions: list[DecisionEntry] = []
    # An escalated conversation's:
    messages_to_escalation: int | None = None  # the escalating message's 1-based position among the customer's
    seconds_to_escalation: float | None = None  # from the start of the conversation
    handoff_message: str | None = None
    note_summary: str | None = None
    note_source: str | None = None
    label: ReplayLabel | None = None

    @field_validator("triggers", mode="before")
    @classmethod
    def _bare_ids(cls, value: Any) -> Any:
        """Records that list trigger ids alone read as triggers without a category."""
        if isinstance(value, list):
            return [{"id": t} if isinstance(t, str) else t for t in value]
        return value

    @property
    def labelled(self) -> bool:
        return self.label is not None and self.label.labelled

    @property
    def trigger_ids(self) -> list[str]:
        return [t.id for t in self.triggers]

    @property
    def rejected_messages(self) -> int:
        return sum(1 for d in self.decisions if isinstance(d, RejectedMessage))

    @model_serializer(mode="wrap")
    def _printed(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if self.at_message is None:
            for name in ESCALATION_FIELDS:
                data.pop(name, None)
        for name in HANDOFF_FIELDS:  # written by the workflow only (`--handoff`); absent, not null, otherwise
            if data.get(name) is None:
                data.pop(name, None)
        data.pop("label", None)
        if self.label is not None:
            data["label"] = self.label.printed()
        return data

    def json_line(self) -> str:
        """The record as `baton replay` prints it (without the newline)."""
        return json.dumps(self.model_dump())
